//! The `zip` step through `memory::rewrite`: a subtree packed into a zip entry of its
//! own, read back with the engine's reader at both levels; the layout rules for
//! members (one input, clashes, links) are checked before data moves.

mod support;

use artifact_engine::entry::decompress;
use artifact_engine::zip::read::index_bytes;
use support::{compile, make_zip, run, text_of};

/// (name, text) of every entry of `zip` (stored or deflated).
fn entries_of(zip: &[u8]) -> Vec<(String, String)> {
    let (_, cd) = index_bytes(zip).unwrap();
    cd.into_iter()
        .map(|c| {
            let at = c.header_offset as usize + 30 + c.name.len();
            let data = decompress(&c, &zip[at..at + c.compressed_size as usize]).unwrap();
            (c.name.clone(), String::from_utf8_lossy(&data).into_owned())
        })
        .collect()
}

fn names(got: &[(String, String)]) -> Vec<&str> {
    got.iter().map(|(n, _)| n.as_str()).collect()
}

const MONOREPO: &[(&str, &str)] = &[
    ("README.md", "monorepo"),
    ("services/api/", ""),
    (
        "services/api/handler.js",
        "exports.handler = () => '${VERSION}';",
    ),
    ("services/web/index.html", "<h1>web</h1>"),
    ("services/api/lib/db.js", "module.exports = {};"),
    ("template.yml", "CodeUri: services/api.zip"),
];

#[test]
fn a_subtree_becomes_a_zip_entry_with_its_members_transformed() {
    let plan = r#"{"variables": {"VERSION": "7"}, "steps": [
        {"template": {"files": ["services/api/**/*.js"]}},
        {"zip": {"files": ["services/api/"], "to": "services/api.zip", "strip_prefix": "services/api/"}},
        {"manifest": {}}
    ]}"#;
    let got = run(MONOREPO, plan).unwrap();
    // The zip takes the place of its first member; the rest keep their order.
    assert_eq!(
        names(&got),
        [
            "README.md",
            "services/api.zip",
            "services/web/index.html",
            "template.yml",
            "manifest.json"
        ]
    );
    let (out, stats) =
        artifact_engine::memory::rewrite(&make_zip(MONOREPO), &compile(plan).unwrap(), 1 << 20)
            .unwrap();
    // Entries of the output, as the streaming worker counts them: members are not.
    assert_eq!(stats.entries, 5);
    let (_, cd) = index_bytes(&out).unwrap();
    let z = cd.iter().find(|c| c.name == "services/api.zip").unwrap();
    let at = z.header_offset as usize + 30 + z.name.len();
    let bytes = decompress(z, &out[at..at + z.compressed_size as usize]).unwrap();
    let members = entries_of(&bytes);
    assert_eq!(names(&members), ["handler.js", "lib/db.js"]);
    assert_eq!(members[0].1, "exports.handler = () => '7';");
    // The manifest lists the zip whole, not its members.
    let manifest = text_of(&got, "manifest.json");
    assert!(
        manifest.contains("\"path\": \"services/api.zip\""),
        "{manifest}"
    );
    assert!(!manifest.contains("handler.js"), "{manifest}");
}

#[test]
fn zip_steps_are_checked_before_data_moves() {
    // Nothing to pack.
    let plan = compile(r#"{"steps": [{"zip": {"files": ["nope/"], "to": "n.zip"}}]}"#).unwrap();
    let layout =
        artifact_engine::plan::layout_output(plan.output(0), &[vec![("a", false)]]).unwrap();
    let e = plan.check_steps_matched(&[layout.step_hits]).unwrap_err();
    assert_eq!(e.path, "steps[0].zip.files");
    // Two members at one path inside the zip.
    let e = run(
        &[("a/x.txt", "1"), ("b/x.txt", "2")],
        r#"{"steps": [{"zip": {"files": ["**/x.txt"], "to": "x.zip"}},
                      {"move": {"flatten": true}}]}"#,
    );
    assert!(e.is_ok(), "later steps do not see members: {e:?}");
    let e = run(
        &[("a/x.txt", "1"), ("b/x.txt", "2")],
        r#"{"steps": [{"move": {"flatten": true}}, {"zip": {"files": ["x.txt"], "to": "x.zip"}}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("two entries would be written as \"x.txt\""),
        "{e}"
    );
    // The zip's own path clashes with an entry.
    let e = run(
        &[("api.zip", "old"), ("api/h.js", "1")],
        r#"{"steps": [{"zip": {"files": ["api/"], "to": "api.zip"}}]}"#,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("zip \"api.zip\" is also an entry"),
        "{e}"
    );
    for (json, path, words) in [
        (
            r#"{"steps": [{"zip": {"files": ["a/"], "to": "../a.zip"}}]}"#,
            "steps[0].zip.to",
            "..",
        ),
        (
            r#"{"steps": [{"zip": {"files": ["a/"], "to": "a/"}}]}"#,
            "steps[0].zip.to",
            "file path",
        ),
        (
            r#"{"steps": [{"zip": {"files": [], "to": "a.zip"}}]}"#,
            "steps[0].zip.files",
            "at least one",
        ),
        (
            r#"{"steps": [{"zip": {"files": ["a/"], "to": "a.zip", "strip_prefix": "/a/"}}]}"#,
            "steps[0].zip.strip_prefix",
            "relative",
        ),
    ] {
        let e = compile(json).unwrap_err();
        assert_eq!(e.path, path, "{json}: {e}");
        assert!(e.message.contains(words), "{json}: {}", e.message);
    }
}

/// Entries are processed in batches (at most 256 entries each) while earlier ones are
/// written: a zip whose members straddle two batch boundaries (entries 256 and 512),
/// among transformed and raw entries, comes out whole, in order, and the same bytes on
/// one thread as on two.
#[test]
fn a_zip_spanning_many_batches_is_written_whole_and_in_order() {
    const N: usize = 700;
    const MEMBERS: std::ops::RangeInclusive<usize> = 200..=599;
    let files: Vec<(String, String)> = (0..N)
        .map(|i| match MEMBERS.contains(&i) {
            true => (format!("pkg/f{i:03}.txt"), format!("member {i} ${{V}}")),
            false => (format!("top/f{i:03}.txt"), format!("entry {i} ${{V}}")),
        })
        .collect();
    let input: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let plan = compile(
        r#"{"variables": {"V": "9"}, "steps": [
            {"template": {"files": ["**/f*[02468].txt"]}},
            {"zip": {"files": ["pkg/**"], "to": "pkg.zip", "strip_prefix": "pkg/"}}
        ]}"#,
    )
    .unwrap();
    let zip = make_zip(&input);
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| artifact_engine::memory::rewrite(&zip, &plan, 1 << 20))
            .unwrap()
    };
    let ((one, stats), (two, _)) = (on(1), on(2));
    assert!(one == two, "one thread and two wrote different bytes");
    let members = MEMBERS.count();
    let outer = N - members + 1;
    assert_eq!(stats.entries as usize, outer);
    let top = entries_of(&one);
    assert_eq!(top.len(), outer);
    let at_zip = *MEMBERS.start();
    assert_eq!(top[at_zip].0, "pkg.zip");
    let (_, cd) = index_bytes(&one).unwrap();
    let z = &cd[at_zip];
    let at = z.header_offset as usize + 30 + z.name.len();
    let inner = decompress(z, &one[at..at + z.compressed_size as usize]).unwrap();
    let got = entries_of(&inner);
    assert_eq!(got.len(), members);
    let v = |i: usize| if i.is_multiple_of(2) { "9" } else { "${V}" };
    for (k, (name, text)) in got.iter().enumerate() {
        let i = k + at_zip;
        assert_eq!(name, &format!("f{i:03}.txt"));
        assert_eq!(text, &format!("member {i} {}", v(i)));
    }
    for (k, (name, text)) in top.iter().enumerate().filter(|(k, _)| *k != at_zip) {
        let i = if k < at_zip { k } else { k + members - 1 };
        assert_eq!(name, &format!("top/f{i:03}.txt"));
        assert_eq!(text, &format!("entry {i} {}", v(i)));
    }
}
