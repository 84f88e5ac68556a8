//! RELP frames as the server sends them: `TXNR SP COMMAND SP DATALEN [SP DATA] LF`, parsed
//! from the front of a buffer that may hold less than one frame or more than one.

/// The largest frame data accepted from the server (responses are a few bytes).
const MAX_DATA: usize = 64 * 1024;

/// One frame received.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub txnr: u32,
    pub command: String,
    pub data: Vec<u8>,
}

/// The first whole frame in `buf` and how many bytes it took; `None` while `buf` holds only
/// part of one; an error naming what is wrong when `buf` does not start with a frame.
pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, String> {
    let mut at = 0;
    let Some(txnr) = field(
        buf,
        &mut at,
        9,
        |b| b.is_ascii_digit(),
        "transaction number",
    )?
    else {
        return Ok(None);
    };
    let Some(command) = field(buf, &mut at, 32, |b| b.is_ascii_alphabetic(), "command")? else {
        return Ok(None);
    };
    // DATALEN ends at the SP before the data, or at the trailer when there is no data.
    let start = at;
    while let Some(b) = buf.get(at) {
        if !b.is_ascii_digit() {
            break;
        }
        at += 1;
        if at - start > 9 {
            return Err("a data length of more than 9 digits".into());
        }
    }
    let Some(&after) = buf.get(at) else {
        return Ok(None);
    };
    let len: usize = std::str::from_utf8(&buf[start..at])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("a missing data length")?;
    if len > MAX_DATA {
        return Err(format!("{len} bytes of data, more than {MAX_DATA}"));
    }
    at += 1;
    let data = match after {
        b'\n' if len == 0 => Vec::new(),
        b' ' => {
            let Some(data) = buf.get(at..at + len) else {
                return Ok(None);
            };
            at += len;
            match buf.get(at) {
                None => return Ok(None),
                Some(b'\n') => at += 1,
                Some(_) => return Err("no LF trailer after the data".into()),
            }
            data.to_vec()
        }
        _ => return Err("no SP or LF after the data length".into()),
    };
    let txnr = std::str::from_utf8(txnr)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or("a bad transaction number")?;
    let command = String::from_utf8_lossy(command).into_owned();
    Ok(Some((
        Frame {
            txnr,
            command,
            data,
        },
        at,
    )))
}

/// The bytes from `*at` to the next SP (skipped), all `ok` and at most `max` of them.
fn field<'a>(
    buf: &'a [u8],
    at: &mut usize,
    max: usize,
    ok: impl Fn(&u8) -> bool,
    what: &str,
) -> Result<Option<&'a [u8]>, String> {
    let start = *at;
    loop {
        match buf.get(*at) {
            None => return Ok(None),
            Some(b' ') if *at > start => {
                *at += 1;
                return Ok(Some(&buf[start..*at - 1]));
            }
            Some(b) if ok(b) && *at - start < max => *at += 1,
            Some(b) => return Err(format!("byte {b:#04x} in the {what}")),
        }
    }
}
