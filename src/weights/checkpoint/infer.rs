use super::{ShapeError, Shapes};
use crate::restore::network::GpenConfig;

/// Works out `FullGenerator`'s constructor arguments from tensor shapes alone, so a user can open any
/// GPEN generator without knowing its size or width. The result is then checked key by key.
///
/// - size: the encoder has `ecd0 .. ecd{log2(size)-2}`;
/// - narrow: the 4x4 constant has `512 * narrow` channels;
/// - channel_multiplier: the 64 px layers have `256 * channel_multiplier * narrow` channels
///   (unobservable below 64 px, where every multiplier builds the same network);
/// - style_dim and n_mlp: the mapping network `generator.style.{1..n_mlp}`.
pub fn infer_config(shapes: &Shapes) -> Result<GpenConfig, ShapeError> {
    let shape = |key: &str| shapes.get(key).ok_or_else(|| format!("it has no `{key}` tensor"));
    let top_ecd = shapes
        .keys()
        .filter_map(|k| k.strip_prefix("ecd")?.split('.').next()?.parse::<u32>().ok())
        .max()
        .ok_or("it has no encoder layers (`ecd0.*`)")?;
    let log_size = top_ecd + 2;
    if !(3..=11).contains(&log_size) {
        return Err(format!("its encoder has {} layers, which matches no GPEN size", top_ecd + 1).into());
    }
    let size = 1i64 << log_size;

    let input = shape("generator.input.input")?;
    let c4 = *input.get(1).ok_or("`generator.input.input` is not [1, C, 4, 4]")?;
    let narrow = c4 as f64 / 512.0;

    let style = shape("generator.style.1.weight")?;
    let style_dim = style[0];
    let n_mlp = shapes.keys().filter_map(|k| k.strip_prefix("generator.style.")?.split('.').next()?.parse::<i64>().ok()).max().unwrap_or(0);

    let channel_multiplier = if size >= 64 {
        // convs.{2(i-3)} is the upsampling conv into 2^i px; 64 px is i = 6.
        let w = shape("generator.convs.6.conv.weight")?;
        let c64 = *w.get(1).ok_or("`generator.convs.6.conv.weight` has the wrong rank")?;
        ((c64 as f64 / (256.0 * narrow)).round() as i64).max(1)
    } else {
        1
    };
    let config = GpenConfig { size, style_dim, n_mlp, channel_multiplier, narrow };
    config.validate()?;
    Ok(config)
}
