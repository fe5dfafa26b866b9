//! The continuation token CodePipeline carries from one invocation to the next.
//!
//! `aw1.` + unpadded base64url of a small JSON object: the state object's nonce
//! (its key is derived from the first output's key, so a token can only ever name a
//! state object beside this action's own output), the SHA-256 of the state object's
//! bytes, a short fingerprint of the action's artifacts and parameters, and the
//! multipart upload the checkpoint left open (so it can be aborted even when the state
//! object is gone). Always well under CodePipeline's 2,048 characters.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::ContinuationError;

const PREFIX: &str = "aw1.";
/// CodePipeline's limit on `continuationToken`.
pub const MAX_TOKEN_CHARS: usize = 2048;

/// A decoded continuation token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Names the state object (`<first output key>.checkpoint-<nonce>`).
    #[serde(rename = "n")]
    pub nonce: String,
    /// Hex SHA-256 of the state object's bytes.
    #[serde(rename = "d")]
    pub digest: String,
    /// The first 16 hex digits of the action fingerprint.
    #[serde(rename = "a")]
    pub action: String,
    /// The output whose multipart upload was left open, and its upload id.
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<(usize, String)>,
    /// What the checkpoint cost, in ms, from deciding to stop to the state object
    /// written (a timing hint for the next invocation, capped when used).
    #[serde(rename = "c", default)]
    pub cost_ms: u64,
}

impl Token {
    /// The token text.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a token serializes");
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parses a token; anything this worker did not write is refused.
    pub fn decode(text: &str) -> Result<Token, ContinuationError> {
        let bad = |why: &str| ContinuationError::BadToken(why.to_string());
        let body = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or_else(|| bad("it does not start with \"aw1.\""))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("it is not base64url"))?;
        let token: Token = serde_json::from_slice(&json)
            .map_err(|_| bad("its content is not a checkpoint reference"))?;
        let nonce_ok = !token.nonce.is_empty()
            && token.nonce.len() <= 80
            && token
                .nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !nonce_ok || !hex(&token.digest, 64) || !hex(&token.action, 16) {
            return Err(bad("its fields are malformed"));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token {
            nonce: "4ad6f2cc-0b7e-4bc3-a86b-5b52f8bb2c21-1f2e3d4c".into(),
            digest: "ab".repeat(32),
            action: "0123456789abcdef".into(),
            upload: Some((0, "x".repeat(400))),
            cost_ms: 1234,
        }
    }

    #[test]
    fn round_trips_within_the_api_limit() {
        let t = token();
        let text = t.encode();
        assert!(text.len() <= MAX_TOKEN_CHARS, "{}", text.len());
        assert_eq!(Token::decode(&text).unwrap(), t);
    }

    #[test]
    fn anything_else_is_refused() {
        let good = token().encode();
        let mut flipped = good.clone().into_bytes();
        flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        let evil = Token {
            nonce: "../../etc".into(),
            ..token()
        }
        .encode();
        for bad in ["", "aw1.", "aw2.e30", "aw1.!!!", "aw1.e30", &flipped, &evil] {
            assert!(
                matches!(Token::decode(bad), Err(ContinuationError::BadToken(_))),
                "{bad}"
            );
        }
    }
}
