//! The report for people: a terminal table (the layout of `bgplb-agent validate`) and a Markdown
//! file.

use super::{Report, Status};

/// `CHECK RESULT DETAIL`, one row per detail line, name and result on the first.
pub fn render_table(report: &Report) -> String {
    let mut table = comfy_table::Table::new();
    table.load_style(comfy_table::presets::NOTHING);
    table.set_header(["CHECK", "RESULT", "DETAIL"]);
    for c in &report.checks {
        let result = c.status.to_string();
        for (i, d) in c.details.iter().enumerate() {
            if i == 0 {
                table.add_row([c.name.as_str(), result.as_str(), d.as_str()]);
            } else {
                table.add_row(["", "", d.as_str()]);
            }
        }
    }
    format!("{table}\n")
}

/// A Markdown document: `# title`, the verdict, a summary table, then each check's details.
pub fn render_markdown(report: &Report, title: &str) -> String {
    let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
    let mut out = format!("# {}\n\n", escape(title));
    out.push_str(&format!(
        "**Result: {}**: {} check(s), {} ok, {} warning(s), {} failed.\n\n",
        match report.status() {
            Status::Ok => "ok",
            Status::Warn => "ok, with warnings",
            Status::Fail => "FAIL",
        },
        report.checks.len(),
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
    ));
    out.push_str("| Check | Result | Summary |\n|---|---|---|\n");
    for c in &report.checks {
        out.push_str(&format!(
            "| [{}](#{}) | {} | {} |\n",
            c.name,
            c.name,
            result(c.status),
            c.details.first().map(|d| escape(d)).unwrap_or_default()
        ));
    }
    for c in &report.checks {
        out.push_str(&format!("\n## {}\n\n{}\n\n", c.name, result(c.status)));
        for d in &c.details {
            out.push_str(&format!("- {}\n", escape(d)));
        }
    }
    out
}

fn result(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Warn => "**warn**",
        Status::Fail => "**FAIL**",
    }
}

/// Text safe in a Markdown paragraph, list item or table cell.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(ch),
        }
    }
    out
}
