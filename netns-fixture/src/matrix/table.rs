//! Plain-text tables with aligned columns, for reports that name every row.

/// A table: a header and rows of cells, each row with optional lines under it.
pub(crate) struct TextTable {
    header: Vec<String>,
    rows: Vec<(Vec<String>, Vec<String>)>,
}

impl TextTable {
    pub(crate) fn new(header: &[&str]) -> Self {
        TextTable {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; `notes` are printed under it, indented to the second column.
    pub(crate) fn row(&mut self, cells: Vec<String>, notes: Vec<String>) {
        self.rows.push((cells, notes));
    }

    /// The table, every line starting with `indent`, columns two spaces apart,
    /// the last column unpadded.
    pub(crate) fn render(&self, indent: &str) -> String {
        let columns = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for (cells, _) in &self.rows {
            for (width, cell) in widths.iter_mut().zip(cells) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::from(indent);
            for (i, cell) in cells.iter().enumerate() {
                if i + 1 == columns.min(cells.len()) {
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
                }
            }
            text.trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        let note_indent = format!("{indent}{}", " ".repeat(widths[0] + 2));
        for (cells, notes) in &self.rows {
            out.push_str(&line(cells));
            out.push('\n');
            for note in notes {
                out.push_str(&note_indent);
                out.push_str(note);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = TextTable::new(&["from", "to", "detail"]);
        table.row(
            vec!["outside".into(), "203.0.113.1:22".into(), "dropped".into()],
            vec!["a note".into()],
        );
        table.row(vec!["lan".into(), "10.0.1.1:53".into(), "".into()], vec![]);
        assert_eq!(
            table.render("  "),
            "  from     to              detail\n  outside  203.0.113.1:22  dropped\n           a note\n  lan      10.0.1.1:53\n"
        );
    }
}
