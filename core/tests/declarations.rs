//! The npm package's TypeScript declarations name exactly the error codes `ErrorCode` has.

use skapi_core::ErrorCode;

#[test]
fn the_declared_error_codes_are_errorcodes_own() {
    let declarations = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../js/skapi.d.ts")).unwrap();
    let union = declarations.split("export type SkapiErrorCode =").nth(1).expect("skapi.d.ts declares SkapiErrorCode");
    let union = &union[..union.find(';').expect("the union ends")];
    let mut declared: Vec<&str> = union.split('\'').skip(1).step_by(2).collect();
    let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    declared.sort_unstable();
    codes.sort_unstable();
    assert_eq!(declared, codes, "js/skapi.d.ts and core's ErrorCode disagree");
}
