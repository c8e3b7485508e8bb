//! QR codes for virtual MFA enrolment: a PNG for `QRCodePNG` and a terminal rendering for `stsd admin`.

use qrcode::{Color, QrCode};

const SCALE: usize = 6;
const QUIET: usize = 4;

/// A black-and-white PNG of `text` as a QR code (6 px per module, 4-module quiet zone): 1 bit per
/// pixel and the png crate's fast deflate. An 8-bit image with the default deflate cost about 2 ms and
/// a few hundred KiB of compressor state per device (most of CreateVirtualMFADevice's time).
///
/// # Errors
/// When the text is too long for a QR code or PNG encoding fails.
pub fn png(text: &str) -> anyhow::Result<Vec<u8>> {
    let code = QrCode::new(text.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let row_bytes = side.div_ceil(8);
    // Bit set = white (grayscale, depth 1); rows start white and dark pixels clear their bits.
    let mut pixels = vec![0xffu8; row_bytes * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                for x in mx * SCALE..(mx + 1) * SCALE {
                    pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
                }
            }
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
}
