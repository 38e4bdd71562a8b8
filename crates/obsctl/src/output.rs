//! Writing to stdout and stderr. A closed pipe (`obsctl events | head`) ends the command
//! quietly instead of panicking like `println!` would.

use std::io::{ErrorKind, Write};

use serde::Serialize;

pub fn text(text: &str) -> anyhow::Result<()> {
    write(text.as_bytes())
}

/// One pretty JSON document and a newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write(text.as_bytes())
}

/// One compact JSON document per line (NDJSON), for streams.
pub fn json_lines<T: Serialize>(values: &[T]) -> anyhow::Result<()> {
    let mut text = String::new();
    for value in values {
        text.push_str(&serde_json::to_string(value)?);
        text.push('\n');
    }
    write(text.as_bytes())
}

/// A remark for the person watching, on stderr so it never mixes into piped output.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "obsctl: {text}");
}

fn write(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(error) => Err(anyhow::Error::new(error).context("writing to stdout")),
    }
}
