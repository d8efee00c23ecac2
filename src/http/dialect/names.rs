//! Each route's name rule: the one its seed's document states, judged as
//! its framework judges it (`Dialect::name_rules`), and stated in the
//! OpenAPI document as each route's name `minLength` and `maxLength`.

use serde_json::{Value, json};

use super::model::Dialect;
use crate::{
    domain::{NAME_TECHNICAL_MAX_CHARS, NameRules},
    http::rules::HttpRule,
};

impl Dialect {
    /// The name rules the seed's document states, judged as its
    /// framework judges them; the configured ones where it states none.
    /// Blank names and control or bidirectional characters are refused
    /// on every route.
    pub fn name_rules(self, configured: NameRules) -> NameRules {
        let (min_chars, max_chars, trim) = match self {
            Self::GrpcGateway | Self::Seed004 => return configured,
            // "It must be longer than 3 characters", no maximum; pydantic
            // counts the name as sent.
            Self::Seed000 => (4, NAME_TECHNICAL_MAX_CHARS, false),
            // pydantic's minLength 1, maxLength 128, as sent.
            Self::Seed001 => (1, 128, false),
            // Django REST framework's CharField(max_length=100): trimmed,
            // then not blank and at most 100.
            Self::Seed002 => (1, 100, true),
            // "Restrictions: none": not empty, trimmed as the service does.
            Self::Seed003 => (1, NAME_TECHNICAL_MAX_CHARS, true),
        };
        NameRules {
            min_chars,
            max_chars,
            require_billing_email: self == Self::Seed001,
            trim,
            // 000's one 400 is its answer to any name too short.
            blank_is_too_short: self == Self::Seed000,
        }
    }
}

/// States in `document` (the OpenAPI document of `rules`, each spoken in
/// its `dialects` entry) the name rule of every route that creates a
/// workspace: its seed's on a seed's route, the `configured` one on the
/// others (their shared request component).
pub fn state_name_rules(
    document: &mut Value,
    rules: &[HttpRule],
    dialects: &[Dialect],
    configured: NameRules,
) {
    for (rule, dialect) in rules.iter().zip(dialects) {
        if rule.rpc.name() != "CreateWorkspace" || rule.body.is_empty() {
            continue;
        }
        let operation =
            &mut document["paths"][rule.path.as_str()][rule.method.as_str().to_ascii_lowercase()];
        let Some(Value::Object(content)) = operation.pointer_mut("/requestBody/content") else {
            continue;
        };
        for media in content.values_mut() {
            let schema = &mut media["schema"];
            let component = schema
                .get("$ref")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match component {
                Some(reference) => {
                    let name = reference.trim_start_matches("#/components/schemas/");
                    if let Some(schema) = document_component(document, name) {
                        describe(schema, configured);
                    }
                    break;
                }
                None => {
                    if let Some(name) = schema.pointer_mut("/properties/name") {
                        describe(name, dialect.name_rules(configured));
                    }
                }
            }
        }
    }
}

fn document_component<'a>(document: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    document
        .get_mut("components")?
        .get_mut("schemas")?
        .get_mut(name)?
        .pointer_mut("/properties/name")
}

/// The name's schema with `rules`' bounds, and how they count.
fn describe(name: &mut Value, rules: NameRules) {
    name["minLength"] = json!(rules.min_chars);
    name["maxLength"] = json!(rules.max_chars);
    let counted = if rules.trim {
        "after trimming surrounding whitespace"
    } else {
        "as sent"
    };
    let rule = format!(
        "{} to {} characters, counted {counted} (invisible characters do not count toward the minimum); \
         not only whitespace; no control or bidirectional formatting characters.",
        rules.min_chars, rules.max_chars
    );
    let described = match name.get("description").and_then(Value::as_str) {
        Some(description) if !description.is_empty() => format!("{description} {rule}"),
        _ => rule,
    };
    name["description"] = json!(described);
}
