//! Reading the seeds' bodies.

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

#[test]
fn seed_001_reads_camel_case_into_proto_names() {
    let read = read(
        SEED_001,
        object(json!({"name": "W", "billingAccountEmail": "b@x.io", "firstMemberId": null, "extra": 1})),
        false,
    )
    .unwrap();
    assert_eq!(
        Value::Object(read),
        json!({"name": "W", "billing_account_email": "b@x.io"})
    );
}

#[test]
fn every_field_at_fault_is_named() {
    let failure = read(
        SEED_000,
        object(json!({"name": 1234, "file_store_credentials": {"file_store_credentials_id": 5}})),
        false,
    )
    .unwrap_err();
    let locs: Vec<Loc> = failure.violations.iter().map(|v| v.loc.clone()).collect();
    assert_eq!(
        locs,
        vec![
            vec!["name".to_owned()],
            vec![
                "file_store_credentials".to_owned(),
                "file_store_credentials_id".to_owned()
            ],
        ]
    );
    assert_eq!(
        failure.violations[0].kind,
        ViolationKind::WrongType("string")
    );
    assert_eq!(failure.violations[0].input, Some(json!(1234)));
}

#[test]
fn seed_002_refuses_what_it_does_not_know() {
    let failure = read(SEED_002, object(json!({"name": "W", "color": "red"})), true).unwrap_err();
    assert_eq!(failure.violations[0].loc, vec!["color".to_owned()]);
    assert_eq!(failure.violations[0].kind, ViolationKind::Unsupported);
}

#[test]
fn proto_paths_become_the_seeds_names() {
    assert_eq!(
        dialect_loc(SEED_001, "billing_account_email"),
        vec!["billingAccountEmail"]
    );
    assert_eq!(
        dialect_loc(
            SEED_000,
            "document_store_credentials.pipeline_document_store_credentials_id"
        ),
        vec![
            "document_store_credentials",
            "pipeline_document_store_credentials_id"
        ]
    );
}
