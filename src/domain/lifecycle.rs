//! A workspace's life after its creation: what an update may change, etags
//! (AIP-154), access tokens.

use chrono::{DateTime, Utc};

use super::{
    DomainError, FieldViolation, NameRules, Reason, normalize_name,
    workspace::{check_description, check_name},
};

/// Longest access token name.
pub const ACCESS_TOKEN_NAME_MAX_CHARS: usize = 100;

/// UpdateWorkspace as it arrived.
#[derive(Debug, Clone, Default)]
pub struct UpdateWorkspaceInput {
    pub name: String,
    pub description: String,
    /// The update mask's paths; empty: every field given.
    pub paths: Vec<String>,
    pub etag: String,
}

/// A checked update: the fields to change, and the version it applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkspaceUpdate {
    /// The name and its uniqueness key.
    pub name: Option<(String, String)>,
    pub description: Option<String>,
    pub expected_revision: Option<i64>,
}

/// The fields UpdateWorkspace may change.
pub const UPDATABLE: &[&str] = &["name", "description"];

/// Check 2 of UpdateWorkspace: the mask, then the fields it names, by the
/// rules CreateWorkspace applies.
pub fn validate_update(
    input: &UpdateWorkspaceInput,
    rules: &NameRules,
) -> Result<WorkspaceUpdate, DomainError> {
    let mut violations = Vec::new();
    let paths: Vec<&str> = if input.paths.is_empty() {
        // AIP-134: without a mask, the fields the request gives.
        UPDATABLE
            .iter()
            .copied()
            .filter(|field| match *field {
                "name" => !input.name.trim().is_empty(),
                _ => !input.description.is_empty(),
            })
            .collect()
    } else {
        input.paths.iter().map(|p| p.trim()).collect()
    };
    if paths.is_empty() {
        violations.push(FieldViolation::new(
            "update_mask",
            Reason::InvalidUpdateMask,
            "Nothing to update: give a name or a description, or name them in update_mask.",
        ));
    }
    for path in &paths {
        if !UPDATABLE.contains(path) {
            violations.push(FieldViolation::new(
                "update_mask",
                Reason::InvalidUpdateMask,
                format!("'{path}' cannot be updated; update_mask may name: name, description."),
            ));
        }
    }
    let name = paths.contains(&"name").then(|| {
        let name = input.name.trim();
        check_name(name, rules, &mut violations);
        name
    });
    let description = paths.contains(&"description").then(|| {
        check_description(&input.description, &mut violations);
        input.description.clone()
    });
    let expected_revision = match parse_etag(&input.etag) {
        Ok(revision) => revision,
        Err(violation) => {
            violations.push(violation);
            None
        }
    };
    if !violations.is_empty() {
        return Err(DomainError::InvalidArgument(violations));
    }
    // The name's key (NFKC, case folding, look-alikes) only for a name
    // within its length: its cost is bounded by the rules, not the input.
    let name = name.map(|name| (name.to_owned(), normalize_name(name)));
    Ok(WorkspaceUpdate {
        name,
        description,
        expected_revision,
    })
}

/// The etag of a workspace at `revision`.
pub fn etag_of(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The revision an etag names; `None` for "".
pub fn parse_etag(etag: &str) -> Result<Option<i64>, FieldViolation> {
    let etag = etag.trim();
    if etag.is_empty() {
        return Ok(None);
    }
    etag.strip_prefix("W/")
        .unwrap_or(etag)
        .trim_matches('"')
        .parse::<i64>()
        .ok()
        .filter(|revision| *revision > 0)
        .map(Some)
        .ok_or_else(|| {
            FieldViolation::new(
                "etag",
                Reason::InvalidEtag,
                "etag must be one this service returned (a workspace's etag).",
            )
        })
}

/// The latest time every encoding of a reply can carry: RFC 3339 (JSON,
/// protobuf's Timestamp) ends at year 9999.
pub fn latest_time() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 999_999_999).expect("9999-12-31T23:59:59Z")
}

/// CreateWorkspaceAccessToken's checks: a name without control or
/// bidirectional characters, an expiry in the future and before year
/// 10000.
pub fn validate_access_token(
    name: &str,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<String, DomainError> {
    let name = name.trim();
    let mut violations = Vec::new();
    let chars = name.chars().count();
    if chars == 0
        || chars > ACCESS_TOKEN_NAME_MAX_CHARS
        || name
            .chars()
            .any(|c| c.is_control() || super::name::is_bidi_control(c))
    {
        violations.push(FieldViolation::new(
            "name",
            Reason::AccessTokenNameInvalid,
            format!(
                "An access token needs a name of 1 to {ACCESS_TOKEN_NAME_MAX_CHARS} printable characters."
            ),
        ));
    }
    if expires_at.is_some_and(|at| at <= now) {
        violations.push(FieldViolation::new(
            "expire_time",
            Reason::ExpireTimeInPast,
            "expire_time must be in the future.",
        ));
    } else if expires_at.is_some_and(|at| at > latest_time()) {
        violations.push(FieldViolation::new(
            "expire_time",
            Reason::ExpireTimeOutOfRange,
            "expire_time must be at most 9999-12-31T23:59:59Z.",
        ));
    }
    if violations.is_empty() {
        Ok(name.to_owned())
    } else {
        Err(DomainError::InvalidArgument(violations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(
        name: &str,
        description: &str,
        paths: &[&str],
    ) -> Result<WorkspaceUpdate, DomainError> {
        validate_update(
            &UpdateWorkspaceInput {
                name: name.into(),
                description: description.into(),
                paths: paths.iter().map(|p| p.to_string()).collect(),
                etag: String::new(),
            },
            &NameRules::default(),
        )
    }

    /// CPU time of this thread.
    fn thread_cpu() -> std::time::Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes the timespec it is given.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        std::time::Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
    }

    #[test]
    fn a_name_over_the_limit_is_refused_before_its_key_is_computed() {
        // U+FDFA grows 18-fold under NFKC: the key of a megabyte of it is
        // what a hostile caller would make the service compute.
        let huge = "\u{FDFA}".repeat(20_000);
        let start = thread_cpu();
        let refused = update(&huge, "", &[]).unwrap_err();
        let checking = thread_cpu() - start;
        assert_eq!(refused.reason(), Reason::NameTooLong);
        let start = thread_cpu();
        let key = normalize_name(&huge);
        let keying = thread_cpu() - start;
        assert!(!key.is_empty());
        // Measured in one run: the refusal costs a small part of the key.
        assert!(
            checking * 4 < keying,
            "refusing took {checking:?}, the key {keying:?}"
        );
    }

    #[test]
    fn access_tokens_refuse_far_expiries_and_bidirectional_names() {
        let now = Utc::now();
        let year_14645 = DateTime::from_timestamp(400_000_000_000, 0).unwrap();
        let refused = validate_access_token("ci", Some(year_14645), now).unwrap_err();
        assert_eq!(refused.reason(), Reason::ExpireTimeOutOfRange);
        assert!(validate_access_token("ci", Some(latest_time()), now).is_ok());
        let refused = validate_access_token("ci\u{202E}gnp.exe", None, now).unwrap_err();
        assert_eq!(refused.reason(), Reason::AccessTokenNameInvalid);
    }

    #[test]
    fn without_a_mask_the_given_fields_change() {
        let only_name = update("New name", "", &[]).unwrap();
        assert_eq!(only_name.name.unwrap().0, "New name");
        assert_eq!(only_name.description, None);
        // With a mask, an empty description clears it.
        let cleared = update("", "", &["description"]).unwrap();
        assert_eq!(cleared.description.as_deref(), Some(""));
        assert!(update("", "", &[]).is_err());
        assert!(update("Name", "", &["id"]).is_err());
        assert!(
            update("abc", "", &["name"]).is_err(),
            "the name rules apply"
        );
    }

    #[test]
    fn etags_round_trip_and_others_are_refused() {
        assert_eq!(parse_etag(&etag_of(7)).unwrap(), Some(7));
        assert_eq!(parse_etag("W/\"7\"").unwrap(), Some(7));
        assert_eq!(parse_etag("").unwrap(), None);
        assert!(parse_etag("abc").is_err());
        assert!(parse_etag("\"0\"").is_err());
    }
}
