//! Compression settings by name (`"auto"`, `"lz4"`, `"zstd"`, `"zstd:19"`, `"off"`), as the
//! bindings, the command line and configuration files give them.

use std::ops::RangeInclusive;
use std::str::FromStr;

use crate::codec::{AutoPolicy, Codec, Compression, Filter};
use crate::error::EncodeError;

/// zstd's level when none is given (zstd's and Dask's default).
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// The levels zstd accepts: its fast levels (negative) to its strongest (22); 0 means
/// [`DEFAULT_ZSTD_LEVEL`] to zstd.
pub const ZSTD_LEVELS: RangeInclusive<i32> = -(1 << 17)..=22;

impl Compression {
    /// The settings called `name`: `"off"` (or `"none"`), `"auto"` ([`AutoPolicy`]'s
    /// defaults), `"lz4"` or `"zstd"` (at `level`, default [`DEFAULT_ZSTD_LEVEL`], checked
    /// against [`ZSTD_LEVELS`]); with `shuffle`, a byte shuffle by each buffer's item size
    /// runs before the codec. A level for anything but zstd is an error.
    pub fn named(
        name: &str,
        shuffle: bool,
        level: Option<i32>,
    ) -> Result<Compression, EncodeError> {
        let filter = if shuffle {
            Filter::Shuffle { elem_size: 0 }
        } else {
            Filter::None
        };
        let no_level = || match level {
            Some(_) => Err(EncodeError::InvalidOption(format!(
                "level= applies to zstd only, not to compression={name:?}"
            ))),
            None => Ok(()),
        };
        match name {
            "off" | "none" => {
                no_level()?;
                Ok(Compression::Off)
            }
            "lz4" => {
                no_level()?;
                Ok(Compression::Fixed(Codec::Lz4, filter))
            }
            "zstd" => {
                let level = level.unwrap_or(DEFAULT_ZSTD_LEVEL);
                if !ZSTD_LEVELS.contains(&level) {
                    return Err(EncodeError::InvalidOption(format!(
                        "zstd level {level} is outside {}..={}",
                        ZSTD_LEVELS.start(),
                        ZSTD_LEVELS.end()
                    )));
                }
                Ok(Compression::Fixed(Codec::Zstd { level }, filter))
            }
            "auto" => {
                no_level()?;
                Ok(Compression::Auto(
                    AutoPolicy::builder().filter(filter).build()?,
                ))
            }
            other => Err(EncodeError::InvalidOption(format!(
                "unknown compression {other:?}: use None, \"auto\", \"lz4\" or \"zstd\""
            ))),
        }
    }
}

/// `"off"`, `"none"`, `"auto"`, `"lz4"`, `"zstd"` or `"zstd:LEVEL"`, each with the byte
/// shuffle on (see [`Compression::named`]).
impl FromStr for Compression {
    type Err = EncodeError;

    fn from_str(s: &str) -> Result<Compression, EncodeError> {
        match s.split_once(':') {
            Some((name, level)) => {
                let level = level.parse::<i32>().map_err(|_| {
                    EncodeError::InvalidOption(format!("zstd level {level:?} is not an integer"))
                })?;
                Compression::named(name, true, Some(level))
            }
            None => Compression::named(s, true, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_bad_ones_are_refused() {
        let shuffled = Filter::Shuffle { elem_size: 0 };
        assert_eq!("off".parse::<Compression>().unwrap(), Compression::Off);
        assert_eq!(
            "lz4".parse::<Compression>().unwrap(),
            Compression::Fixed(Codec::Lz4, shuffled)
        );
        assert_eq!(
            "zstd:19".parse::<Compression>().unwrap(),
            Compression::Fixed(Codec::Zstd { level: 19 }, shuffled)
        );
        assert_eq!(
            Compression::named("zstd", false, None).unwrap(),
            Compression::Fixed(
                Codec::Zstd {
                    level: DEFAULT_ZSTD_LEVEL
                },
                Filter::None
            )
        );
        assert!(matches!(
            "auto".parse::<Compression>().unwrap(),
            Compression::Auto(_)
        ));
        for (bad, what) in [
            ("brotli", "unknown compression"),
            ("zstd:23", "outside"),
            ("zstd:-200000", "outside"),
            ("zstd:x", "not an integer"),
            ("lz4:3", "applies to zstd only"),
        ] {
            let e = bad.parse::<Compression>().unwrap_err();
            assert!(matches!(e, EncodeError::InvalidOption(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains(what), "{bad}: {e}");
        }
    }
}
