//! `unzip` through the in-memory engine: members of a stored inner zip enter the tree
//! at the step, go through the later steps, and are read back with the independent
//! `zip` crate; hostile or unreadable inner zips fail naming the zip entry.

mod support;

use std::io::{Cursor, Write};

use artifact_engine::memory::rewrite;
use artifact_engine::plan::{JobContext, Plan, PlanSpec};
use support::read_with_zip_crate;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod::{Deflated, Stored};

fn plan(json: &str) -> Plan {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    Plan::compile(&PlanSpec::parse(Some(json)).unwrap(), &ctx).unwrap()
}

fn make_zip(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, SimpleFileOptions::default())
                .unwrap();
        } else {
            let o = SimpleFileOptions::default().compression_method(method);
            w.start_file(*name, o).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

fn site_zip() -> Vec<u8> {
    make_zip(
        &[
            ("index.html", b"<p>v${VERSION}</p>"),
            ("css/", b""),
            ("css/app.css", &b"body{}".repeat(100)),
        ],
        Deflated,
    )
}

fn outer(inner: &[u8], method: zip::CompressionMethod) -> Vec<u8> {
    make_zip(
        &[("README.md", b"readme"), ("dist/site.zip", inner)],
        method,
    )
}

#[test]
fn members_land_under_the_zip_path_and_go_through_later_steps() {
    let input = outer(&site_zip(), Stored);
    let p = plan(
        r#"{"variables": {"VERSION": "7"}, "steps": [
            {"unzip": {"files": ["dist/*.zip"]}},
            {"template": {"files": ["**/*.html"]}}]}"#,
    );
    let (out, stats) = rewrite(&input, &p, 1 << 20).unwrap();
    let got = read_with_zip_crate(&out);
    let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "dist/site/index.html",
            "dist/site/css/",
            "dist/site/css/app.css"
        ]
    );
    assert_eq!(got[1].1, b"<p>v7</p>");
    assert_eq!(got[3].1, b"body{}".repeat(100));
    // The untouched member is copied raw; the zip entry itself is replaced.
    assert_eq!(stats.entries, 4);
    assert!(stats.raw >= 2, "{stats:?}");
}

#[test]
fn to_keep_and_later_moves() {
    let input = outer(&site_zip(), Stored);
    let p = plan(
        r#"{"steps": [
            {"unzip": {"files": ["dist/site.zip"], "to": "", "keep": true}},
            {"move": {"files": ["css/**"], "strip_prefix": "css/", "add_prefix": "static/"}}]}"#,
    );
    let (out, _) = rewrite(&input, &p, 1 << 20).unwrap();
    let names: Vec<String> = read_with_zip_crate(&out)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "README.md",
            "dist/site.zip",
            "index.html",
            "static/",
            "static/app.css"
        ]
    );
}

#[test]
fn steps_before_the_unzip_do_not_see_members() {
    let input = outer(&site_zip(), Stored);
    // The exclude comes first: it cannot drop a member; the one after can.
    let p = plan(
        r#"{"steps": [{"exclude": ["**/*.css"]}, {"unzip": {"files": ["**/*.zip"], "to": "s"}},
                      {"exclude": ["s/index.html"]}]}"#,
    );
    let (out, _) = rewrite(&input, &p, 1 << 20).unwrap();
    let names: Vec<String> = read_with_zip_crate(&out)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["README.md", "s/css/", "s/css/app.css"]);
}

#[test]
fn a_member_clashing_with_an_entry_is_refused_naming_both() {
    let inner = make_zip(&[("README.md", b"other")], Deflated);
    let input = outer(&inner, Stored);
    let p = plan(r#"{"steps": [{"unzip": {"files": ["dist/site.zip"], "to": ""}}]}"#);
    let err = rewrite(&input, &p, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("README.md"), "{err}");
    assert!(err.contains("from zip \"dist/site.zip\""), "{err}");
}

#[test]
fn a_deflated_inner_zip_gives_the_same_output_as_a_stored_one() {
    let p = plan(
        r#"{"variables": {"VERSION": "7"}, "steps": [
            {"unzip": {"files": ["dist/*.zip"]}},
            {"copy": {"from": "dist/site/index.html", "to": "index.html"}},
            {"template": {"files": ["**/*.html"]}}]}"#,
    );
    let stored = rewrite(&outer(&site_zip(), Stored), &p, 1 << 20).unwrap().0;
    let deflated = rewrite(&outer(&site_zip(), Deflated), &p, 1 << 20)
        .unwrap()
        .0;
    assert_eq!(read_with_zip_crate(&stored), read_with_zip_crate(&deflated));
    assert_eq!(read_with_zip_crate(&deflated).len(), 5);
}

#[test]
fn a_deflated_inner_zip_with_a_wrong_crc_is_refused_naming_it() {
    let mut input = outer(&site_zip(), Deflated);
    // The CRC-32 of dist/site.zip in its central-directory record (offset 16).
    let name = b"dist/site.zip";
    let cd = input.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    assert_eq!(&input[cd + 46..cd + 46 + name.len()], name);
    input[cd + 16] ^= 0xff;
    // And in its local header (offset 14), so only the data can tell.
    let lh = input
        .windows(30 + name.len())
        .position(|w| &w[..4] == b"PK\x03\x04" && &w[30..] == name)
        .unwrap();
    input[lh + 14] ^= 0xff;
    let p = plan(r#"{"steps": [{"unzip": {"files": ["dist/site.zip"]}}]}"#);
    let err = rewrite(&input, &p, 1 << 20).unwrap_err().to_string();
    assert!(
        err.contains("dist/site.zip") && err.contains("CRC-32"),
        "{err}"
    );
}

#[test]
fn a_hostile_member_name_is_refused_naming_the_inner_zip() {
    let mut inner = make_zip(&[("aa/evil.sh", b"#!/bin/sh")], Deflated);
    // Same length: the local header's and the central directory's name both become
    // a path that climbs out of the extraction directory.
    let mut patched = 0;
    for w in 0..inner.len() - 10 {
        if &inner[w..w + 10] == b"aa/evil.sh" {
            inner[w..w + 3].copy_from_slice(b"../");
            patched += 1;
        }
    }
    assert_eq!(patched, 2);
    let input = outer(&inner, Stored);
    let p = plan(r#"{"steps": [{"unzip": {"files": ["dist/site.zip"]}}]}"#);
    let err = rewrite(&input, &p, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("inner zip \"dist/site.zip\""), "{err}");
    assert!(err.contains("../evil.sh"), "{err}");
}

#[test]
fn a_zip_inside_an_unpacked_zip_is_not_unpacked_again() {
    let innermost = make_zip(&[("x", b"x")], Stored);
    let inner = make_zip(&[("nested.zip", &innermost)], Stored);
    let input = outer(&inner, Stored);
    let p = plan(
        r#"{"steps": [{"unzip": {"files": ["**/*.zip"]}}, {"unzip": {"files": ["**/nested.zip"]}}]}"#,
    );
    let err = rewrite(&input, &p, 1 << 20).unwrap_err().to_string();
    assert!(err.contains("zip inside an unpacked zip"), "{err}");
}

#[test]
fn bad_to_is_refused_at_compile_time() {
    let ctx = JobContext {
        inputs: vec!["In".into()],
        outputs: vec!["Out".into()],
        ..Default::default()
    };
    let spec = PlanSpec::parse(Some(
        r#"{"steps": [{"unzip": {"files": ["a.zip"], "to": "../x"}}]}"#,
    ))
    .unwrap();
    let err = Plan::compile(&spec, &ctx).unwrap_err().to_string();
    assert!(err.contains("steps[0].unzip.to"), "{err}");
}
