//! Progress bars for long runs (forecasting 100,000 series, replaying days): on a terminal
//! only, so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A progress bar of `len` steps drawn with `template`, shown from `shown_from` steps
/// on, never under `CI` or when stderr is not a terminal.
pub(crate) fn bar(len: u64, shown_from: u64, template: &str) -> ProgressBar {
    let visible =
        len >= shown_from && std::env::var_os("CI").is_none() && std::io::stderr().is_terminal();
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(template);
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}
