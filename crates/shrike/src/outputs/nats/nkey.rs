//! NATS decentralised authentication: a `.creds` file (a user JWT and the user's nkey seed)
//! or a bare nkey seed, and the signature of the server's nonce that proves the seed is held.
//!
//! An nkey seed is base32 (RFC 4648, unpadded) of two prefix bytes (seed marker and key type),
//! the 32-byte Ed25519 seed and a CRC-16/XMODEM of all that, little-endian; a public key is
//! the type byte, the 32-byte public key and the same CRC. The nonce's Ed25519 signature goes
//! to the server as unpadded URL-safe base64, with the JWT (`jwt`) or, for a bare seed, the
//! public key (`nkey`) in `CONNECT`.

use std::path::Path;

use anyhow::{bail, Context};
use ring::signature::{Ed25519KeyPair, KeyPair};

/// The seed marker of the first byte (`S…`).
const PREFIX_SEED: u8 = 18 << 3;
/// The type byte of user keys (`U…`); a user seed starts `SU`.
const PREFIX_USER: u8 = 20 << 3;

/// What a credentials file gives: the JWT when it is a `.creds` file, and the key pair.
pub struct Credentials {
    pub jwt: Option<String>,
    key: Ed25519KeyPair,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("jwt", &self.jwt.is_some())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Reads a `.creds` file (`-----BEGIN NATS USER JWT-----` … `-----BEGIN USER NKEY
    /// SEED-----` …) or a file holding only a user seed (`SU…`).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading nats credentials {}", path.display()))?;
        let block = |marker: &str| {
            let mut lines = text.lines().map(str::trim);
            lines.find(|l| l.contains(marker))?;
            lines.find(|l| !l.is_empty()).map(str::to_string)
        };
        let (jwt, seed) = match block("BEGIN NATS USER JWT") {
            Some(jwt) => {
                let seed = block("NKEY SEED").with_context(|| {
                    format!(
                        "nats credentials {}: a JWT but no nkey seed block",
                        path.display()
                    )
                })?;
                (Some(jwt), seed)
            }
            None => (None, text.trim().to_string()),
        };
        let key =
            key_pair(&seed).with_context(|| format!("nats credentials {}", path.display()))?;
        Ok(Credentials { jwt, key })
    }

    /// The user's public key (`U…`), as a server's `authorization { users: [{nkey: …}] }`
    /// names it.
    pub fn public_key(&self) -> String {
        let mut raw = vec![PREFIX_USER];
        raw.extend_from_slice(self.key.public_key().as_ref());
        let crc = crc16(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        base32_encode(&raw)
    }

    /// The nonce's signature, as `CONNECT`'s `sig` carries it.
    pub fn sign(&self, nonce: &str) -> String {
        base64url(self.key.sign(nonce.as_bytes()).as_ref())
    }
}

/// The Ed25519 key pair of a user seed (`SU…`).
fn key_pair(seed: &str) -> anyhow::Result<Ed25519KeyPair> {
    let raw = base32_decode(seed).context("the nkey seed is not base32")?;
    if raw.len() != 36 {
        bail!("the nkey seed decodes to {} bytes, not 36", raw.len());
    }
    let (body, crc) = raw.split_at(34);
    if crc16(body).to_le_bytes() != crc {
        bail!("the nkey seed's checksum does not match: a character is wrong or missing");
    }
    let kind = ((raw[0] & 7) << 5) | ((raw[1] & 0xf8) >> 3);
    if raw[0] & 0xf8 != PREFIX_SEED || kind != PREFIX_USER {
        bail!("not a user nkey seed (it should start with SU)");
    }
    Ed25519KeyPair::from_seed_unchecked(&raw[2..34])
        .map_err(|e| anyhow::anyhow!("the nkey seed is not an Ed25519 seed: {e}"))
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in data {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((acc >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = BASE32.iter().position(|&a| a == c.to_ascii_uppercase())? as u32;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// CRC-16/XMODEM (polynomial 0x1021, initial 0), the nkeys checksum.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Unpadded URL-safe base64.
fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CRC-16/XMODEM's check value, and base32/base64url against RFC 4648's test vectors.
    #[test]
    fn encodings_match_their_standards() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_decode("MZXW6YTBOI").unwrap(), b"foobar");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    /// A seed with one character changed fails its checksum instead of signing with another key.
    #[test]
    fn corrupted_seed_is_refused() {
        let mut raw = vec![PREFIX_SEED | (PREFIX_USER >> 5), (PREFIX_USER & 31) << 3];
        raw.extend_from_slice(&[7u8; 32]);
        let crc = crc16(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        let seed = base32_encode(&raw);
        assert!(seed.starts_with("SU"), "{seed}");
        assert!(key_pair(&seed).is_ok());
        let mut bad = seed.into_bytes();
        bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
        let err = key_pair(std::str::from_utf8(&bad).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
