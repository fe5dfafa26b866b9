//! Inputs found by `fuzz/` (zip_index, zip_rewrite): each once panicked or was read
//! differently from other zip readers. They must now fail cleanly.

use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use artifact_engine::zip::read::index_bytes;
use base64::Engine;

fn cases() -> Vec<(&'static str, &'static str)> {
    vec![
        ("zip64 header offset near u64::MAX", "AFBLAQIeAxQAAAAAAAAAIQAAAAAAAAAAAAAAAAABAAwAAAAAAAAAAAAAAP////9hAQAIAOL/////////UEsFBgAAAAABAAEAOwAAAAEAAAAAAA=="),
        ("zip64 locator offset near u64::MAX", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABQSwYHAAAAAPD/////////AQAAAFBLBQYAAAAAAAAAAAAAAAAAAAAAAAA="),
        ("comment hides a second archive", "UEsFBgAAAAAAAAAAAAAAAAAAAAB8AFBLAwQKAAAAAAAAACEAimNoZQsAAAALAAAABwAAAGV2aWwuc2hlY2hvIHB3bmVkClBLAQIKAwoAAAAAAAAAIQCKY2hlCwAAAAsAAAAHAAAAAAAAAAAAAADtgRYAAABldmlsLnNoUEsFBgAAAAABAAEANQAAAEYAAAAAACE="),
        ("zip64 record after the end record", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABQSwYHAAAAAGIAAAAAAAAAAQAAAFBLBQYAAAAAAAAAAAAAAAAAAAAAAABQSwYGLAAAAAAAAAAtAy0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
    ]
}

#[test]
fn fuzz_findings_fail_cleanly() {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    let plan = Plan::compile(&PlanSpec::default(), &ctx).unwrap();
    for (what, b64) in cases() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert!(index_bytes(&bytes).is_err(), "{what}: indexed");
        assert!(
            rewrite(&bytes, &plan, 1 << 20).is_err(),
            "{what}: rewritten"
        );
    }
}
