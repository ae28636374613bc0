//! CSV and JSON Lines rendering for exports, without a dependency: RFC
//! 4180 quoting, and a guard against spreadsheet formula injection since
//! auditors open exports in spreadsheets.

use std::fmt::Write as _;

use serde::Serialize;

/// One CSV record, CRLF-terminated as RFC 4180 says.
pub fn record<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = String::new();
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_cell(&mut line, cell.as_ref());
    }
    line.push_str("\r\n");
    line
}

fn push_cell(line: &mut String, cell: &str) {
    // A cell a spreadsheet would run as a formula is prefixed with an
    // apostrophe (OWASP "CSV injection"); ids and times never start so.
    let guarded;
    let cell = if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{cell}");
        guarded.as_str()
    } else {
        cell
    };
    if cell.contains([',', '"', '\n', '\r']) {
        line.push('"');
        let _ = write!(line, "{}", cell.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(cell);
    }
}

/// One JSON Lines record.
pub fn json_line<T: Serialize>(value: &T) -> String {
    let mut line = serde_json::to_string(value).unwrap_or_else(|e| {
        // Serializing plain rows cannot fail; say so rather than panic.
        format!("{{\"error\":\"cannot serialize row: {e}\"}}")
    });
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_guarded() {
        assert_eq!(
            record(&["a", "b,c", "say \"hi\""]),
            "a,\"b,c\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(record(&["=1+1", "x\ny"]), "'=1+1,\"x\ny\"\r\n");
    }
}
