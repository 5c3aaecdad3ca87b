//! A receipt as a one-page A4 PDF, written with `pdf-writer` (typst's
//! low-level writer) in the standard Helvetica fonts, so nothing is
//! embedded and nothing varies: no creation date, no document id. The
//! same receipt gives the same bytes.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::{Receipt, Words};
use crate::domain::config::Locale;

/// Where a column starts, in points from the left edge.
const COLUMNS: [f32; 6] = [56.0, 290.0, 330.0, 405.0, 450.0, 505.0];

/// The PDF of `receipt` in `locale`.
pub(super) fn render(receipt: &Receipt, locale: Locale) -> Vec<u8> {
    let words = Words::of(locale);
    let mut page = Page::default();
    page.text(
        true,
        18.0,
        56.0,
        &format!("{} {}", words.title, receipt.order_id),
    );
    page.down(22.0);
    page.text(
        false,
        10.0,
        56.0,
        &format!("{}: {}", words.date, receipt.day()),
    );
    page.down(26.0);

    // The parties, side by side.
    let mut seller = vec![receipt.seller.name.clone()];
    seller.extend(receipt.seller.address.iter().cloned());
    seller.push(format!(
        "{}: {}",
        words.organisation_number, receipt.seller.organisation_number
    ));
    seller.push(format!(
        "{}: {}",
        words.vat_number, receipt.seller.vat_number
    ));
    seller.extend(receipt.seller.email.iter().cloned());
    let mut buyer = receipt.buyer.clone();
    if let Some(vat) = &receipt.buyer_vat_number {
        buyer.push(format!("{}: {vat}", words.vat_number));
    }
    page.text(true, 10.0, 56.0, words.seller);
    page.text(true, 10.0, 320.0, words.buyer);
    for i in 0..seller.len().max(buyer.len()) {
        page.down(13.0);
        if let Some(line) = seller.get(i) {
            page.text(false, 10.0, 56.0, line);
        }
        if let Some(line) = buyer.get(i) {
            page.text(false, 10.0, 320.0, line);
        }
    }
    page.down(30.0);

    let heads = [
        words.item,
        words.quantity,
        words.unit_price,
        words.vat_rate,
        words.vat,
        words.amount,
    ];
    for (x, head) in COLUMNS.iter().zip(heads) {
        page.text(true, 9.0, *x, head);
    }
    for line in &receipt.lines {
        page.down(14.0);
        let cells = [
            line.description.clone(),
            line.quantity.to_string(),
            receipt.money(line.unit_price, locale),
            Receipt::rate(line.vat_rate, locale),
            receipt.money(line.vat, locale),
            receipt.money(line.total, locale),
        ];
        for (x, cell) in COLUMNS.iter().zip(&cells) {
            page.text(false, 9.0, *x, cell);
        }
    }
    page.down(28.0);
    page.text(false, 10.0, 320.0, words.total_excl);
    page.text(false, 10.0, 470.0, &receipt.money(receipt.total, locale));
    for (rate, base, vat) in &receipt.vat_by_rate {
        page.down(14.0);
        let label = format!(
            "{} {} ({} {})",
            words.vat,
            Receipt::rate(*rate, locale),
            words.of,
            receipt.money(*base, locale)
        );
        page.text(false, 10.0, 320.0, &label);
        page.text(false, 10.0, 470.0, &receipt.money(*vat, locale));
    }
    page.down(16.0);
    page.text(true, 11.0, 320.0, words.total_incl);
    page.text(
        true,
        11.0,
        470.0,
        &receipt.money(receipt.total_with_vat, locale),
    );
    page.down(36.0);
    page.text(false, 10.0, 56.0, words.paid);
    page.finish(&format!("{} {}", words.title, receipt.order_id))
}

/// The page being written: its content and the line it is on.
struct Page {
    content: Content,
    y: f32,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            content: Content::new(),
            y: 780.0,
        }
    }
}

impl Page {
    /// Moves down `by` points.
    fn down(&mut self, by: f32) {
        self.y -= by;
    }

    /// Writes `text` at `x` on the current line.
    fn text(&mut self, bold: bool, size: f32, x: f32, text: &str) {
        let font = if bold { Name(b"F2") } else { Name(b"F1") };
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, self.y);
        self.content.show(Str(&win_ansi(text)));
        self.content.end_text();
    }

    /// The whole document, titled `title`.
    fn finish(self, title: &str) -> Vec<u8> {
        let (catalog, tree, page, regular, bold, contents, info) = (
            Ref::new(1),
            Ref::new(2),
            Ref::new(3),
            Ref::new(4),
            Ref::new(5),
            Ref::new(6),
            Ref::new(7),
        );
        let mut pdf = Pdf::new();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree).kids([page]).count(1);
        let mut sheet = pdf.page(page);
        sheet.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
        sheet.parent(tree);
        sheet.contents(contents);
        sheet
            .resources()
            .fonts()
            .pair(Name(b"F1"), regular)
            .pair(Name(b"F2"), bold);
        sheet.finish();
        for (id, name) in [(regular, &b"Helvetica"[..]), (bold, b"Helvetica-Bold")] {
            pdf.type1_font(id)
                .base_font(Name(name))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.stream(contents, &self.content.finish());
        pdf.document_info(info).title(TextStr(title));
        pdf.finish()
    }
}

/// `text` in the fonts' encoding (Windows-1252): Swedish letters are in
/// it; anything it lacks is written `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            '\u{20}'..='\u{7e}' | '\u{a1}'..='\u{ff}' => c as u8,
            '\u{a0}' => b' ',
            '\u{20ac}' => 0x80,
            '\u{2013}' => 0x96,
            '\u{2014}' => 0x97,
            '\u{2018}' => 0x91,
            '\u{2019}' => 0x92,
            '\u{201c}' => 0x93,
            '\u{201d}' => 0x94,
            '\u{2022}' => 0x95,
            _ => b'?',
        })
        .collect()
}
