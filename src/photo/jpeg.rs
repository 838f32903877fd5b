//! JPEG pixels as the authors read photos: `cv2.imread` (and PIL) decode with libjpeg-turbo at its
//! defaults — the accurate integer IDCT, "fancy" (triangular) chroma upsampling, its YCbCr to RGB
//! tables — and so do we, through the TurboJPEG API with those same defaults. The image crate's
//! own JPEG decoder upsamples chroma differently: on an ordinary 4:2:0 photo 12 % of its values
//! differ from OpenCV's (up to 4 levels), and the background of a restored photo is the decoded
//! input, so it would differ from the authors' result by that much.

use image::RgbImage;

/// The file's pixels as libjpeg-turbo decodes them, as RGB (a grey JPEG gives three equal
/// channels, as `cv2.IMREAD_COLOR` does). An error is libjpeg-turbo's: a colour space it does not
/// turn into RGB (CMYK, YCCK), a precision other than 8 bits, or damaged data — even damage it
/// only warns about, since it would fill what it cannot read with grey.
pub fn decode_rgb(data: &[u8]) -> Result<RgbImage, turbojpeg::Error> {
    let mut decompressor = turbojpeg::Decompressor::new()?;
    let header = decompressor.read_header(data)?;
    let mut image = turbojpeg::Image {
        pixels: vec![0u8; 3 * header.width * header.height],
        width: header.width,
        pitch: 3 * header.width,
        height: header.height,
        format: turbojpeg::PixelFormat::RGB,
    };
    decompressor.decompress(data, image.as_deref_mut())?;
    let (width, height) = (header.width as u32, header.height as u32);
    Ok(RgbImage::from_raw(width, height, image.pixels).expect("the buffer holds width × height × 3 bytes"))
}
