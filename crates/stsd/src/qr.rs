//! QR codes for virtual MFA enrolment: a PNG for `QRCodePNG` and a terminal rendering for `stsd admin`.

use qrcode::{Color, QrCode};

const SCALE: usize = 6;
const QUIET: usize = 4;

/// A grayscale PNG of `text` as a QR code (6 px per module, 4-module quiet zone).
///
/// # Errors
/// When the text is too long for a QR code or PNG encoding fails.
pub fn png(text: &str) -> anyhow::Result<Vec<u8>> {
    let code = QrCode::new(text.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let side32 = u32::try_from(side)?;
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
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
    let code = QrCode::new(text.as_bytes())?;
    let w = code.width();
    let colors = code.to_colors();
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
    #[test]
    fn png_is_a_png() {
        let p = super::png("otpauth://totp/dev@123456789012?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert_eq!(&p[..8], b"\x89PNG\r\n\x1a\n");
        assert!(super::terminal("x").unwrap().contains('█'));
    }
}
