//! Hostile-archive tests for the reader: hand-built archives (empty stored entries)
//! whose names, extra fields, end records and trailing bytes are chosen freely.

use super::*;
use crate::names::NameRules;

/// One entry of a hand-built archive.
struct E {
    name: Vec<u8>,
    extra: Vec<u8>,
    host: u8,
}

fn e(name: &[u8]) -> E {
    E {
        name: name.to_vec(),
        extra: Vec::new(),
        host: 3,
    }
}

/// An Info-ZIP Unicode path extra field (0x7075) for `raw` naming it `unicode`.
fn unicode_path(raw: &[u8], unicode: &[u8]) -> Vec<u8> {
    let mut x = 0x7075u16.to_le_bytes().to_vec();
    x.extend_from_slice(&((5 + unicode.len()) as u16).to_le_bytes());
    x.push(1);
    x.extend_from_slice(&crc32fast::hash(raw).to_le_bytes());
    x.extend_from_slice(unicode);
    x
}

/// Local headers and central directory of `entries`; returns (archive so far, cd
/// offset, cd size). Every entry is an empty stored file.
fn body(entries: &[E]) -> (Vec<u8>, u32, u32) {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for x in entries {
        offsets.push(out.len() as u32);
        out.extend_from_slice(&LFH_SIG.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version..date
        out.extend_from_slice(&[0; 12]); // crc, sizes
        out.extend_from_slice(&(x.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&x.name);
    }
    let cd_offset = out.len() as u32;
    for (x, off) in entries.iter().zip(offsets) {
        out.extend_from_slice(&CDH_SIG.to_le_bytes());
        out.extend_from_slice(&[20, x.host, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&[0; 12]); // crc, sizes
        out.extend_from_slice(&(x.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(x.extra.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 10]); // comment len, disk, attrs
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&x.name);
        out.extend_from_slice(&x.extra);
    }
    let cd_size = out.len() as u32 - cd_offset;
    (out, cd_offset, cd_size)
}

/// An end record declaring `count` entries and a `comment_len` (the comment bytes are
/// appended by the caller).
fn end_record(count: u16, cd_size: u32, cd_offset: u32, comment_len: u16) -> Vec<u8> {
    let mut r = EOCD_SIG.to_le_bytes().to_vec();
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(&count.to_le_bytes());
    r.extend_from_slice(&count.to_le_bytes());
    r.extend_from_slice(&cd_size.to_le_bytes());
    r.extend_from_slice(&cd_offset.to_le_bytes());
    r.extend_from_slice(&comment_len.to_le_bytes());
    r
}

fn archive(entries: &[E]) -> Vec<u8> {
    let (mut out, off, size) = body(entries);
    out.extend(end_record(entries.len() as u16, size, off, 0));
    out
}

fn bad_name(r: Result<(Eocd, Vec<CdEntry>), ZipError>, rule: &str) -> String {
    match r {
        Err(ZipError::BadName { name, why }) => {
            assert!(why.contains(rule), "{name:?}: {why}");
            name
        }
        other => panic!("expected BadName ({rule}), got {other:?}"),
    }
}

fn malformed(r: Result<(Eocd, Vec<CdEntry>), ZipError>, what: &str) {
    match r {
        Err(ZipError::Malformed(m)) => assert!(m.contains(what), "{m}"),
        other => panic!("expected Malformed ({what}), got {other:?}"),
    }
}

#[test]
fn backslashes_are_refused_from_any_host() {
    let r = index_bytes(&archive(&[e(b"..\\..\\evil.txt")]));
    assert_eq!(bad_name(r, "backslash"), "..\\..\\evil.txt");
    // From a DOS host they are separators: the `..` is then what is refused.
    let mut dos = e(b"..\\..\\evil.txt");
    dos.host = 0;
    bad_name(index_bytes(&archive(&[dos])), "`..`");
    let mut dos = e(b"dir\\file.txt");
    dos.host = 0;
    let (_, entries) = index_bytes(&archive(&[dos])).unwrap();
    assert_eq!(entries[0].name, "dir/file.txt");
}

#[test]
fn a_unicode_path_field_cannot_hide_a_bad_stored_name() {
    // Readers that ignore the 0x7075 field see the stored name: it must be safe too.
    for (raw, rule) in [
        (&b"evil\0.txt"[..], "NUL"),
        (b"../evil.txt", "`..`"),
        (b"/etc/passwd", "absolute"),
    ] {
        let mut x = e(raw);
        x.extra = unicode_path(raw, b"safe.txt");
        bad_name(index_bytes(&archive(&[x])), rule);
    }
    // And the Unicode name is checked like any other.
    for (uni, rule) in [
        (&b"a\0b"[..], "NUL"),
        (b"a\x1bb", "U+001B"),
        (b"a\\b", "backslash"),
        (b"./a", "`.`"),
    ] {
        let mut x = e(b"ok.txt");
        x.extra = unicode_path(b"ok.txt", uni);
        bad_name(index_bytes(&archive(&[x])), rule);
    }
    let mut x = e(b"r\x82sum\x82.txt");
    x.extra = unicode_path(b"r\x82sum\x82.txt", "résumé.txt".as_bytes());
    let (_, entries) = index_bytes(&archive(&[x])).unwrap();
    assert_eq!(entries[0].name, "résumé.txt");
}

#[test]
fn stored_names_follow_every_rule() {
    let long = vec![b'x'; MAX_NAME_LEN_FOR_TESTS + 1];
    for (raw, rule) in [
        (&b"a\x01b"[..], "U+0001"),
        (b"a\x7fb", "U+007F"),
        (b"a//b", "empty path component"),
        (b"a/./b.txt", "`.`"),
        (b"./a", "`.`"),
        (b"C:x", "drive letter"),
        (b"C:/x", "drive letter"),
        (&long, "4096"),
    ] {
        bad_name(index_bytes(&archive(&[e(raw)])), rule);
    }
    let exact = vec![b'x'; MAX_NAME_LEN_FOR_TESTS];
    assert!(index_bytes(&archive(&[e(&exact), e(b"...")])).is_ok());
}

const MAX_NAME_LEN_FOR_TESTS: usize = crate::names::MAX_NAME_LEN;

#[test]
fn case_duplicates_are_refused_unless_allowed() {
    let bytes = archive(&[e(b"README.md"), e(b"src/a.rs"), e(b"readme.md")]);
    assert_eq!(bad_name(index_bytes(&bytes), "letter case"), "readme.md");
    let (_, off, size) = body(&[e(b"README.md"), e(b"src/a.rs"), e(b"readme.md")]);
    let cd = &bytes[off as usize..(off + size) as usize];
    let tail = &bytes[bytes.len() - 22..];
    let TailParse::Done(eocd) = parse_tail(tail, bytes.len() as u64).unwrap() else {
        panic!()
    };
    let allow = NameRules {
        allow_case_duplicates: true,
    };
    assert_eq!(
        parse_central_directory_with(cd, &eocd, &allow)
            .unwrap()
            .len(),
        3
    );
    assert!(parse_central_directory_with(cd, &eocd, &NameRules::default()).is_err());
    // Unicode lowercase, not just ASCII; directories too.
    bad_name(
        index_bytes(&archive(&[e("ÉTÉ/".as_bytes()), e("été/".as_bytes())])),
        "letter case",
    );
    // Exact duplicates keep their own message.
    bad_name(index_bytes(&archive(&[e(b"a"), e(b"a")])), "appears twice");
}

#[test]
fn a_wrapped_16_bit_entry_count_is_recovered_by_walking_the_directory() {
    let n = 65_536 + 2;
    let entries: Vec<E> = (0..n).map(|i| e(format!("f{i}").as_bytes())).collect();
    let (mut bytes, off, size) = body(&entries);
    bytes.extend(end_record((n % 65_536) as u16, size, off, 0));
    let (eocd, got) = index_bytes(&bytes).unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(eocd.entries, n as u64);
    // A count that is simply wrong (not a wrap) is still refused.
    let (mut bytes, off, size) = body(&entries[..5]);
    bytes.extend(end_record(3, size, off, 0));
    malformed(index_bytes(&bytes), "declares 3 entries");
    // A normal archive is unaffected.
    assert_eq!(index_bytes(&archive(&entries[..3])).unwrap().1.len(), 3);
}

#[test]
fn an_end_record_whose_comment_runs_past_the_end_is_refused() {
    // A second end record appended after a valid archive, claiming a long comment:
    // Python's zipfile takes it (the last signature), Go skips it.
    let (mut bytes, off, size) = body(&[e(b"a.txt")]);
    bytes.extend(end_record(1, size, off, 0));
    bytes.extend(end_record(0, 0, 0, 200));
    malformed(index_bytes(&bytes), "runs past the end");
    // Same with the only record.
    let (mut bytes, off, size) = body(&[e(b"a.txt")]);
    bytes.extend(end_record(1, size, off, 5));
    bytes.extend_from_slice(b"abc");
    malformed(index_bytes(&bytes), "runs past the end");
}

#[test]
fn zip_structures_after_the_end_record_are_refused() {
    let sigs = [LFH_SIG, CDH_SIG, EOCD_SIG, EOCD64_SIG, EOCD64_LOCATOR_SIG];
    for sig in sigs {
        // In the trailing bytes after the record...
        let mut bytes = archive(&[e(b"a.txt")]);
        bytes.extend_from_slice(b"pad");
        bytes.extend_from_slice(&sig.to_le_bytes());
        malformed(index_bytes(&bytes), "zip headers");
        // ...and in the comment.
        let (mut bytes, off, size) = body(&[e(b"a.txt")]);
        bytes.extend(end_record(1, size, off, 7));
        bytes.extend_from_slice(b"c");
        bytes.extend_from_slice(&sig.to_le_bytes());
        bytes.extend_from_slice(b"mt");
        malformed(index_bytes(&bytes), "zip headers");
    }
    // Plain padding and plain comments are fine.
    let mut bytes = archive(&[e(b"a.txt")]);
    bytes.extend_from_slice(&[0; 100]);
    assert!(index_bytes(&bytes).is_ok());
    let (mut bytes, off, size) = body(&[e(b"a.txt")]);
    bytes.extend(end_record(1, size, off, 7));
    bytes.extend_from_slice(b"comment");
    assert_eq!(index_bytes(&bytes).unwrap().0.comment, b"comment");
}

#[test]
fn an_earlier_end_record_reaching_the_end_of_file_is_refused() {
    // Record 1's comment covers record 2: readers that want the comment to end at
    // the end of the file would pick record 1, readers that take the last signature
    // record 2. (Record 1's comment holds a signature, but record 2 is the one the
    // scan finds last, so this needs its own check.)
    let (mut bytes, off, size) = body(&[e(b"a.txt")]);
    bytes.extend(end_record(1, size, off, 22 + 4));
    bytes.extend_from_slice(b"pad!");
    bytes.extend(end_record(1, size, off, 0));
    malformed(index_bytes(&bytes), "another end record");
}

#[test]
fn a_zip64_locator_pointing_past_its_record_is_clamped() {
    let mut bytes = archive(&[e(b"a.txt")]);
    let eocd_at = bytes.len() - 22;
    let mut locator = EOCD64_LOCATOR_SIG.to_le_bytes().to_vec();
    locator.extend_from_slice(&0u32.to_le_bytes());
    locator.extend_from_slice(&(u64::MAX - 10).to_le_bytes());
    locator.extend_from_slice(&1u32.to_le_bytes());
    bytes.splice(eocd_at..eocd_at, locator);
    let Ok(TailParse::NeedEocd64 {
        offset, declared, ..
    }) = parse_tail(&bytes, bytes.len() as u64)
    else {
        panic!("expected a zip64 tail")
    };
    assert_eq!(declared, offset);
    assert!(index_bytes(&bytes).is_err());
}

#[test]
fn huge_offsets_do_not_overflow() {
    // A zip64-style central directory offset near u64::MAX must be an error, not a
    // panic, in index_bytes.
    let e = Eocd {
        eocd_offset: 100,
        entries: 0,
        cd_offset: u64::MAX - 1,
        cd_size: 10,
        prefix: 0,
        comment: Vec::new(),
        zip64: true,
    };
    assert!(cd_range(&e, 1000).is_none());
}

#[test]
fn rewrite_reads_inputs_with_the_plan_name_rules() {
    use crate::plan::{JobContext, Plan, PlanSpec};
    let ctx = JobContext {
        inputs: vec!["A".into()],
        outputs: vec!["X".into()],
        ..Default::default()
    };
    let input = archive(&[e(b"README.md"), e(b"readme.md")]);
    let strict = Plan::compile(&PlanSpec::default(), &ctx).unwrap();
    let err = crate::memory::rewrite(&input, &strict, 1 << 20).unwrap_err();
    assert!(err.to_string().contains("letter case"), "{err}");
    let spec = PlanSpec::parse(Some(r#"{"names":{"case_duplicates":"allow"}}"#)).unwrap();
    let lax = Plan::compile(&spec, &ctx).unwrap();
    let (out, stats) = crate::memory::rewrite(&input, &lax, 1 << 20).unwrap();
    assert_eq!(stats.entries, 2);
    assert!(index_bytes(&out).is_err());
    assert_eq!(
        index_bytes_with(&out, &lax.name_rules()).unwrap().1.len(),
        2
    );
}
