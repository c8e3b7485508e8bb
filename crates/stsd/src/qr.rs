//! QR codes for virtual MFA enrolment: a PNG for `QRCodePNG` and a terminal rendering for `stsd admin`.
//!
//! The symbol is the one `qrcode::QrCode::new` makes (the smallest version at error correction level
//! M, the mask with the lowest penalty of ISO/IEC 18004 as that crate scores it), built from the crate's
//! public steps; only the mask choice is ours. The crate masks module by module and scores each of the
//! eight masked symbols through boxed closures per module, which was about half of
//! CreateVirtualMFADevice's CPU (issue 20). Here the eight masks are applied and scored on rows and
//! columns held as bits (`Unmasked`, `score_bits`; module by module, `penalty_bytes`, above version 27)
//! and the crate draws the chosen one. Tests check the masks against the crate's `apply_mask`, the two
//! scorings against each other, and over 407 texts that every symbol equals the crate's.

use qrcode::canvas::{Canvas, MaskPattern, Module};
use qrcode::{Color, EcLevel};

const SCALE: usize = 6;
const QUIET: usize = 4;

/// The masks in the order the crate tries them (the first of equal scores wins, as there).
const MASKS: [MaskPattern; 8] = [
    MaskPattern::Checkerboard,
    MaskPattern::HorizontalLines,
    MaskPattern::VerticalLines,
    MaskPattern::DiagonalLines,
    MaskPattern::LargeCheckerboard,
    MaskPattern::Fields,
    MaskPattern::Diamonds,
    MaskPattern::Meadow,
];

/// The QR code of `text`: its width in modules and its modules, row by row.
///
/// # Errors
/// When the text is too long for a QR code.
fn code(text: &str) -> anyhow::Result<(usize, Vec<Color>)> {
    let ec_level = EcLevel::M;
    let bits = qrcode::bits::encode_auto(text.as_bytes(), ec_level)?;
    let version = bits.version();
    let (data, ec) = qrcode::ec::construct_codewords(&bits.into_bytes(), version, ec_level)?;
    let mut canvas = Canvas::new(version, ec_level);
    canvas.draw_all_functional_patterns();
    canvas.draw_data(&data, &ec);
    let width = usize::try_from(version.width())?;
    if width <= MAX_BITS_WIDTH {
        // The masks applied and scored on bits; the crate then draws the chosen one.
        let unmasked = Unmasked::of(&canvas, width)?;
        let mut best = (i64::MAX, MASKS[0]);
        for (index, mask) in MASKS.into_iter().enumerate() {
            let (rows, columns) = unmasked.masked(index);
            let score = score_bits(&rows, &columns, width);
            if score < best.0 {
                best = (score, mask);
            }
        }
        canvas.apply_mask(best.1);
        return Ok((width, canvas.into_colors()));
    }
    let mut best: Option<(i64, Vec<Color>)> = None;
    for mask in MASKS {
        let mut masked = canvas.clone();
        masked.apply_mask(mask);
        let colors = masked.into_colors();
        let score = penalty_bytes(&colors, width);
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, colors));
        }
    }
    let (_, colors) = best.ok_or_else(|| anyhow::anyhow!("no QR mask"))?;
    Ok((width, colors))
}

/// The format information the crate draws with each mask at error correction level M (ISO/IEC 18004
/// table C.1), 15 bits, the most significant first, at [`FORMAT_MAIN`] and [`FORMAT_SIDE`] in turn.
const FORMAT_M: [u16; 8] = [
    0x5412, 0x5125, 0x5e7c, 0x5b4b, 0x45f9, 0x40ce, 0x4f97, 0x4aa0,
];
/// (column, row) of the format bits next to the top-left finder pattern.
const FORMAT_MAIN: [(i16, i16); 15] = [
    (0, 8),
    (1, 8),
    (2, 8),
    (3, 8),
    (4, 8),
    (5, 8),
    (7, 8),
    (8, 8),
    (8, 7),
    (8, 5),
    (8, 4),
    (8, 3),
    (8, 2),
    (8, 1),
    (8, 0),
];
/// (column, row) of their copy next to the other two (negative: counted from the far edge).
const FORMAT_SIDE: [(i16, i16); 15] = [
    (8, -1),
    (8, -2),
    (8, -3),
    (8, -4),
    (8, -5),
    (8, -6),
    (8, -7),
    (-8, 8),
    (-7, 8),
    (-6, 8),
    (-5, 8),
    (-4, 8),
    (-3, 8),
    (-2, 8),
    (-1, 8),
];

/// Whether mask `index` (in [`MASKS`] order: the pattern's number) inverts the module at column `x`,
/// row `y`: the crate's mask functions.
fn inverts(index: usize, x: usize, y: usize) -> bool {
    match index {
        0 => (x + y).is_multiple_of(2),
        1 => y.is_multiple_of(2),
        2 => x.is_multiple_of(3),
        3 => (x + y).is_multiple_of(3),
        4 => (y / 2 + x / 3).is_multiple_of(2),
        5 => (x * y) % 2 + (x * y) % 3 == 0,
        6 => ((x * y) % 2 + (x * y) % 3).is_multiple_of(2),
        _ => ((x + y) % 2 + (x * y) % 3).is_multiple_of(2),
    }
}

/// `period` bits of `bit(i)` repeated along a line (every mask repeats every 6 modules along a row
/// and every 12 down a column).
fn tiled(period: usize, bit: impl Fn(usize) -> bool) -> u128 {
    let mut line = 0u128;
    for i in 0..period {
        line |= u128::from(bit(i)) << i;
    }
    let mut filled = period;
    while filled < 128 {
        line |= line << filled;
        filled *= 2;
    }
    line
}

/// A symbol before masking, as bits per row and per column: its colours, and which modules a mask
/// inverts (data and error correction; not the function patterns nor the format information).
struct Unmasked {
    width: usize,
    rows: Vec<u128>,
    columns: Vec<u128>,
    data_rows: Vec<u128>,
    data_columns: Vec<u128>,
}

impl Unmasked {
    fn of(canvas: &Canvas, width: usize) -> anyhow::Result<Unmasked> {
        let mut u = Unmasked {
            width,
            rows: vec![0; width],
            columns: vec![0; width],
            data_rows: vec![0; width],
            data_columns: vec![0; width],
        };
        for y in 0..width {
            for x in 0..width {
                let module = canvas.get(i16::try_from(x)?, i16::try_from(y)?);
                let dark = u128::from(module.is_dark());
                let data = u128::from(!matches!(module, Module::Masked(_)));
                u.rows[y] |= dark << x;
                u.columns[x] |= dark << y;
                u.data_rows[y] |= data << x;
                u.data_columns[x] |= data << y;
            }
        }
        Ok(u)
    }

    /// Rows and columns with mask `index` applied and its format information drawn, as the crate's
    /// `apply_mask` does.
    fn masked(&self, index: usize) -> (Vec<u128>, Vec<u128>) {
        let full = (1u128 << self.width) - 1;
        let row_patterns: Vec<u128> = (0..12)
            .map(|y| tiled(6, |x| inverts(index, x, y)) & full)
            .collect();
        let column_patterns: Vec<u128> = (0..6)
            .map(|x| tiled(12, |y| inverts(index, x, y)) & full)
            .collect();
        let mut rows: Vec<u128> = (0..self.width)
            .map(|y| self.rows[y] ^ (row_patterns[y % 12] & self.data_rows[y]))
            .collect();
        let mut columns: Vec<u128> = (0..self.width)
            .map(|x| self.columns[x] ^ (column_patterns[x % 6] & self.data_columns[x]))
            .collect();
        // The format modules were reserved light; the bits that are set make them dark.
        let format = FORMAT_M[index];
        let at = |c: i16| -> usize {
            let w = self.width as i16;
            (if c < 0 { c + w } else { c }) as usize
        };
        for (i, (main, side)) in FORMAT_MAIN.iter().zip(&FORMAT_SIDE).enumerate() {
            if format >> (14 - i) & 1 == 1 {
                for (x, y) in [main, side] {
                    let (x, y) = (at(*x), at(*y));
                    rows[y] |= 1 << x;
                    columns[x] |= 1 << y;
                }
            }
        }
        (rows, columns)
    }
}

/// The widest symbol whose lines fit in a `u128` with room for the shifts of [`score_bits`].
///
/// The penalty of a masked symbol, scored as the qrcode crate scores it: runs of five or more modules
/// of one colour in a row or column (length − 2 each); 2×2 blocks of one colour (3 each, overlapping
/// counted); the finder-like run dark-light-dark-dark-dark-light-dark without four light modules on one
/// side or the other (40 each, modules outside the symbol counting as light; the three real finder
/// patterns included, a constant); the distance of the dark share from half (`|dark · 200 / all −
/// 100|`, integer division).
///
/// Symbols up to this many modules a side (version 27; an enrolment URI needs about 10) are
/// masked and scored on rows and columns held as bits ([`Unmasked`], [`score_bits`]): a few word
/// operations per line for each rule. Larger ones are masked by the crate and scored module by module
/// ([`penalty_bytes`]). Tests check the two scorings against each other, the bit-wise masking against
/// the crate's, and the symbols against `QrCode::new`.
const MAX_BITS_WIDTH: usize = 125;

/// [`score_bits`] of a symbol given module by module (row by row): bit `i` of a line is its module
/// `i`, set when dark.
#[cfg(test)]
fn penalty_bits(modules: &[Color], width: usize) -> i64 {
    // Filled from the last module to the first, each line shifted by one as a module comes in (a
    // shift by a variable amount costs several instructions on a u128).
    let mut rows = vec![0u128; width];
    let mut columns = vec![0u128; width];
    for (row, line) in rows.iter_mut().zip(modules.chunks_exact(width)).rev() {
        for (column, c) in columns.iter_mut().zip(line).rev() {
            let dark = u128::from(*c == Color::Dark);
            *row = (*row << 1) | dark;
            *column = (*column << 1) | dark;
        }
    }
    score_bits(&rows, &columns, width)
}

/// The penalty (see [`MAX_BITS_WIDTH`]) of a symbol held as bits, by rows and by columns.
fn score_bits(rows: &[u128], columns: &[u128], width: usize) -> i64 {
    let full = (1u128 << width) - 1;
    let mut score = 0i64;
    for line in rows.iter().chain(columns) {
        score += line_penalty_bits(*line, full);
    }
    for pair in rows.windows(2) {
        if let [top, bottom] = pair {
            // Columns i and i + 1 of both rows of one colour: equal down both columns and across the top.
            let down = !(top ^ bottom) & full;
            let across = !(top ^ (top >> 1)) & (full >> 1);
            score += 3 * i64::from((down & (down >> 1) & across).count_ones());
        }
    }
    let dark = i64::from(rows.iter().map(|r| r.count_ones()).sum::<u32>());
    score + balance_penalty(dark, width * width)
}

/// The penalty for the dark share's distance from half: `|dark · 200 / all − 100|`, integer division.
fn balance_penalty(dark: i64, all: usize) -> i64 {
    let all = i64::try_from(all).unwrap_or(i64::MAX).max(1);
    (dark * 200 / all - 100).abs()
}

/// The run and finder-like penalties of one row or column held as bits (`full`: a bit per module).
fn line_penalty_bits(line: u128, full: u128) -> i64 {
    // Bit i: modules i and i + 1 alike; then: modules i ..= i + 4 alike (a window of five in a run).
    let alike = !(line ^ (line >> 1)) & (full >> 1);
    let five = alike & (alike >> 1) & (alike >> 2) & (alike >> 3);
    // A run of L ≥ 5 holds L − 4 windows and scores L − 2: its windows, and 2 more at its first.
    let first = five & !(five << 1);
    let runs = i64::from(five.count_ones()) + 2 * i64::from(first.count_ones());
    // Bit j: modules j ..= j + 6 are dark, light, dark, dark, dark, light, dark (outside is light, so
    // a pattern never runs past the edge).
    let finder =
        line & !(line >> 1) & (line >> 2) & (line >> 3) & (line >> 4) & !(line >> 5) & (line >> 6);
    // A dark module among the four before j, and among the four after j + 6.
    let before = (line << 1) | (line << 2) | (line << 3) | (line << 4);
    let after = (line >> 7) | (line >> 8) | (line >> 9) | (line >> 10);
    runs + 40 * i64::from((finder & !(before & after)).count_ones())
}

/// The penalty (see [`MAX_BITS_WIDTH`]) module by module, for any size.
fn penalty_bytes(modules: &[Color], width: usize) -> i64 {
    // 1 = dark, row by row, and the same transposed (columns as rows).
    let rows: Vec<u8> = modules
        .iter()
        .map(|c| u8::from(*c == Color::Dark))
        .collect();
    let lines: Vec<&[u8]> = rows.chunks_exact(width).collect();
    let mut columns = Vec::with_capacity(rows.len());
    for x in 0..width {
        columns.extend(lines.iter().map(|line| line[x]));
    }
    let mut score = 0i64;
    for line in lines.iter().copied().chain(columns.chunks_exact(width)) {
        score += line_penalty(line);
    }
    for pair in lines.windows(2) {
        if let [top, bottom] = pair {
            for x in 1..width {
                let c = top[x];
                let same = (top[x - 1] == c) & (bottom[x - 1] == c) & (bottom[x] == c);
                score += 3 * i64::from(same);
            }
        }
    }
    let dark = i64::try_from(rows.iter().filter(|m| **m == 1).count()).unwrap_or(i64::MAX);
    score + balance_penalty(dark, rows.len())
}

/// The run and finder-like penalties of one row or column (see [`penalty_bytes`]).
fn line_penalty(line: &[u8]) -> i64 {
    const FINDER: [u8; 7] = [1, 0, 1, 1, 1, 0, 1];
    let mut score = 0i64;
    // A run of L ≥ 5 scores L − 2: 3 when it reaches 5 modules, 1 for each module after. Counted without
    // a branch on the modules (random data: a branch per module is mispredicted half the time).
    let mut run = 1i64;
    for pair in line.windows(2) {
        run = run * i64::from(pair[0] == pair[1]) + 1;
        score += 3 * i64::from(run == 5) + i64::from(run > 5);
    }
    for (j, window) in line.windows(7).enumerate() {
        if window == FINDER {
            let before = line[j.saturating_sub(4)..j].contains(&1);
            let after = line[j + 7..(j + 11).min(line.len())].contains(&1);
            if !before || !after {
                score += 40;
            }
        }
    }
    score
}

/// A black-and-white PNG of `text` as a QR code (6 px per module, 4-module quiet zone): 1 bit per
/// pixel and the png crate's fast deflate. An 8-bit image with the default deflate cost about 2 ms and
/// a few hundred KiB of compressor state per device (most of CreateVirtualMFADevice's time).
///
/// # Errors
/// When the text is too long for a QR code or PNG encoding fails.
pub fn png(text: &str) -> anyhow::Result<Vec<u8>> {
    let (modules, colors) = code(text)?;
    let side = (modules + 2 * QUIET) * SCALE;
    let row_bytes = side.div_ceil(8);
    // Bit set = white (grayscale, depth 1); rows start white and dark pixels clear their bits.
    // Each row of modules is drawn once as a row of pixels and copied SCALE times.
    let mut pixels = vec![0xffu8; row_bytes * side];
    let first = QUIET * SCALE * row_bytes;
    for (row, line) in colors.chunks_exact(modules).enumerate() {
        let at = first + row * SCALE * row_bytes;
        let (drawn, copies) = pixels[at..at + SCALE * row_bytes].split_at_mut(row_bytes);
        for (mx, c) in line.iter().enumerate() {
            if *c == Color::Dark {
                for x in (mx + QUIET) * SCALE..(mx + QUIET + 1) * SCALE {
                    drawn[x / 8] &= !(0x80 >> (x % 8));
                }
            }
        }
        for copy in copies.chunks_exact_mut(row_bytes) {
            copy.copy_from_slice(drawn);
        }
    }
    let mut out = Vec::new();
    {
        let side32 = u32::try_from(side)?;
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        enc.set_compression(png::Compression::Fast);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

/// The QR code drawn with Unicode half blocks, for terminals.
///
/// # Errors
/// When the text is too long for a QR code.
pub fn terminal(text: &str) -> anyhow::Result<String> {
    let (w, colors) = code(text)?;
    let dark = |x: isize, y: isize| -> bool {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < w
            && colors[y as usize * w + x as usize] == Color::Dark
    };
    let q = 2isize;
    let mut s = String::new();
    let mut y = -q;
    while y < w as isize + q {
        for x in -q..w as isize + q {
            // Light modules are drawn as blocks so the code reads on dark terminals too.
            s.push(match (dark(x, y), dark(x, y + 1)) {
                (false, false) => '█',
                (false, true) => '▀',
                (true, false) => '▄',
                (true, true) => ' ',
            });
        }
        s.push('\n');
        y += 2;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::{QUIET, SCALE};
    use qrcode::{Color, QrCode};

    #[test]
    fn png_shows_the_qr_code_module_by_module() {
        let text = "otpauth://totp/dev@123456789012?secret=JBSWY3DPEHPK3PXP";
        let p = super::png(text).unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        // Decode it back (to 8-bit grayscale) and compare every pixel with the code's modules.
        let mut decoder = png::Decoder::new(std::io::Cursor::new(p));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        let code = QrCode::new(text.as_bytes()).unwrap();
        let (modules, colors) = (code.width(), code.to_colors());
        let side = (modules + 2 * QUIET) * SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        for y in 0..side {
            for x in 0..side {
                let (mx, my) = (x / SCALE, y / SCALE);
                let inside = (QUIET..QUIET + modules).contains(&mx)
                    && (QUIET..QUIET + modules).contains(&my);
                let dark = inside && colors[(my - QUIET) * modules + (mx - QUIET)] == Color::Dark;
                let want = if dark { 0 } else { 255 };
                assert_eq!(buf[y * info.line_size + x], want, "pixel ({x}, {y})");
            }
        }
        assert!(super::terminal("x").unwrap().contains('█'));
    }

    /// Our mask choice against its oracle, the qrcode crate's own (`QrCode::new`): the same symbol,
    /// module by module, for enrolment URIs and for texts of every length up to 600 bytes in each
    /// encoding mode the crate picks (digits, upper-case alphanumerics, bytes, mixed), including runs
    /// of one character, which score high on the run and block rules.
    #[test]
    fn symbols_are_the_qrcode_crates() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % n as u64).unwrap()
        };
        const ALPHABETS: [&str; 4] = [
            "0123456789",
            "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?#[]@!$&'()*+,;=%é",
            "0A",
        ];
        let mut texts: Vec<String> = vec![
            "otpauth://totp/stsd:alice@123456789012?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=stsd".to_owned(),
            "x".to_owned(),
            "0".repeat(200),
            "A".repeat(77),
            "é".repeat(40),
        ];
        for _ in 0..400 {
            let alphabet: Vec<char> = ALPHABETS[next(ALPHABETS.len())].chars().collect();
            let long = next(4) == 0;
            let len = 1 + next(if long { 600 } else { 160 });
            let run = next(3) == 0;
            let first = alphabet[next(alphabet.len())];
            let mut text = String::new();
            for _ in 0..len {
                let same = run && next(5) > 0;
                text.push(if same {
                    first
                } else {
                    alphabet[next(alphabet.len())]
                });
            }
            texts.push(text);
        }
        // Symbols wider than the bit-wise scoring takes (scored module by module).
        texts.push("q".repeat(1500));
        texts.push("7".repeat(3000));
        let mut versions = std::collections::BTreeSet::new();
        for text in &texts {
            let want = QrCode::new(text.as_bytes()).unwrap();
            let (width, colors) = super::code(text).unwrap();
            assert_eq!(width, want.width(), "{text}");
            assert!(colors == want.to_colors(), "{text}");
            versions.insert(width);
        }
        // Many sizes of symbol were compared, not a few.
        assert!(versions.len() > 15, "{versions:?}");
        assert!(
            versions.last().is_some_and(|w| *w > super::MAX_BITS_WIDTH),
            "{versions:?}"
        );
    }

    /// The masks applied on bits give the crate's masked symbols (with their format information), module
    /// by module, for every mask and symbols of many sizes.
    #[test]
    fn masks_on_bits_are_the_crates() {
        use qrcode::EcLevel;
        use qrcode::canvas::Canvas;
        let mut widths = std::collections::BTreeSet::new();
        for len in (1..1200).step_by(23) {
            let text: String = (0..len)
                .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap()))
                .collect();
            let bits = qrcode::bits::encode_auto(text.as_bytes(), EcLevel::M).unwrap();
            let version = bits.version();
            let (data, ec) =
                qrcode::ec::construct_codewords(&bits.into_bytes(), version, EcLevel::M).unwrap();
            let mut canvas = Canvas::new(version, EcLevel::M);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec);
            let width = usize::try_from(version.width()).unwrap();
            if width > super::MAX_BITS_WIDTH {
                continue;
            }
            widths.insert(width);
            let unmasked = super::Unmasked::of(&canvas, width).unwrap();
            for (index, mask) in super::MASKS.into_iter().enumerate() {
                let mut crates = canvas.clone();
                crates.apply_mask(mask);
                let colors = crates.into_colors();
                let (rows, columns) = unmasked.masked(index);
                for y in 0..width {
                    for x in 0..width {
                        let dark = colors[y * width + x] == Color::Dark;
                        let at = format!("width {width}, mask {index}, ({x}, {y})");
                        assert_eq!(rows[y] >> x & 1 == 1, dark, "{at}");
                        assert_eq!(columns[x] >> y & 1 == 1, dark, "{at}");
                    }
                }
            }
        }
        // Small and large symbols, up to the widest masked on bits.
        assert!(widths.len() > 20, "{widths:?}");
        assert!(widths.last() == Some(&super::MAX_BITS_WIDTH), "{widths:?}");
    }

    /// The two ways of scoring agree, on random grids of every symbol width the bit-wise one takes and
    /// on grids of long runs (which score high on the run, block and finder-like rules).
    #[test]
    fn penalties_by_bits_and_by_modules_agree() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for width in (21..=super::MAX_BITS_WIDTH).step_by(4) {
            for kind in 0..4 {
                let mut dark = false;
                let modules: Vec<Color> = (0..width * width)
                    .map(|_| {
                        let r = next();
                        // Random modules, or runs: a colour change with probability 1/2, 1/8, 1/32.
                        dark = match kind {
                            0 => r & 1 == 1,
                            k => dark ^ (r % (1 << (2 * k - 1)) == 0),
                        };
                        if dark { Color::Dark } else { Color::Light }
                    })
                    .collect();
                assert_eq!(
                    super::penalty_bits(&modules, width),
                    super::penalty_bytes(&modules, width),
                    "width {width}, kind {kind}"
                );
            }
        }
        // Every module dark: runs, blocks and the balance at their maximum, no finder-like pattern.
        let all = vec![Color::Dark; 25 * 25];
        assert_eq!(
            super::penalty_bits(&all, 25),
            super::penalty_bytes(&all, 25)
        );
    }
}
