//! Aligned columns for the terminal. Widths are measured on the plain text and the colour is
//! wrapped around each padded cell, so escape codes never disturb the alignment.

use anstyle::Style;

use super::Painter;

#[derive(Debug, Clone)]
pub struct Cell {
    text: String,
    style: Style,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell::styled(text, Style::new())
    }

    pub fn styled(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

#[derive(Debug, Default)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Lines indented by `indent` spaces; the last column is cut to the terminal's width.
    pub fn render(&self, painter: &Painter, indent: usize) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (column, cell) in row.iter().enumerate().take(columns) {
                widths[column] = widths[column].max(width(&cell.text));
            }
        }
        let header_style = Style::new().dimmed();
        let mut out = String::new();
        let header: Vec<Cell> = self
            .header
            .iter()
            .map(|h| Cell::styled(*h, header_style))
            .collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = " ".repeat(indent);
            let mut used = indent;
            for (column, cell) in row.iter().enumerate().take(columns) {
                let last = column + 1 == columns || column + 1 == row.len();
                let text = if last {
                    painter.fit(&cell.text, used)
                } else {
                    pad(&cell.text, widths[column])
                };
                used += width(&text) + 2;
                line.push_str(&painter.paint(&text, cell.style));
                if !last {
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Display width; the symbols used here are all one column wide.
pub fn width(text: &str) -> usize {
    text.chars().count()
}

pub fn pad(text: &str, to: usize) -> String {
    let mut padded = text.to_string();
    padded.extend(std::iter::repeat_n(' ', to.saturating_sub(width(text))));
    padded
}

/// `text` cut to `max` columns, ending in `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// Greedy word wrap: lines of at most `first` columns, then `rest`; a word longer than a
/// line is split.
pub fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut limit = first.max(1);
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        loop {
            let needed = if line.is_empty() { 0 } else { 1 } + width(&word);
            if width(&line) + needed <= limit {
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&word);
                break;
            }
            if line.is_empty() {
                // Longer than a whole line: split it.
                let head: String = word.chars().take(limit).collect();
                word = word.chars().skip(limit).collect();
                lines.push(head);
            } else {
                lines.push(std::mem::take(&mut line));
            }
            limit = rest.max(1);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_last_one_fits_the_width() {
        let painter = Painter::plain(Some(30));
        let mut table = Table::new(&["NAME", "NOTE"]);
        table.row(vec![Cell::plain("api"), Cell::plain("ok")]);
        table.row(vec![
            Cell::plain("worker-long"),
            Cell::plain("a note far too long for thirty columns"),
        ]);
        assert_eq!(
            table.render(&painter, 2),
            "  NAME         NOTE\n  api          ok\n  worker-long  a note far too…\n"
        );
    }

    #[test]
    fn wrapping_breaks_at_words_and_splits_what_cannot_fit() {
        assert_eq!(
            wrap("one two three four", 9, 6),
            ["one two", "three", "four"]
        );
        assert_eq!(wrap("abcdefghij", 4, 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 10, 10), [""]);
    }

    #[test]
    fn colour_does_not_move_columns() {
        let painter = Painter::new(true, None);
        let mut table = Table::new(&["A", "B"]);
        table.row(vec![
            Cell::styled("x", Style::new().bold()),
            Cell::plain("y"),
        ]);
        let text = table.render(&painter, 0);
        let plain: String = strip_ansi(&text);
        assert_eq!(plain, "A  B\nx  y\n");
    }

    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
