//! Which device and numeric precision the networks run with.

use crate::error::ConfigError;
pub use crate::error::DeviceError;
use std::fmt;
use std::str::FromStr;
use tch::{Device, Kind};

/// A device as the user names it: `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum DeviceChoice {
    /// The first CUDA device when libtorch sees one, the CPU otherwise.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    /// Resolves to a concrete device, failing with a clear message for a GPU that is not there.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Auto => Ok(if tch::Cuda::is_available() { Device::Cuda(0) } else { Device::Cpu }),
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Cuda(i) => {
                let count = if tch::Cuda::is_available() { tch::Cuda::device_count() as usize } else { 0 };
                if i < count {
                    Ok(Device::Cuda(i))
                } else if count == 0 {
                    Err(DeviceError::NoCuda { index: i })
                } else {
                    Err(DeviceError::NoSuchCuda { index: i, count })
                }
            }
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n.parse().map(DeviceChoice::Cuda).map_err(|_| ConfigError::BadValue(format!("bad CUDA index in '{s}'"))),
                None => Err(ConfigError::BadValue(format!("unknown device '{s}': expected auto, cpu, cuda or cuda:N"))),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => write!(f, "auto"),
            DeviceChoice::Cpu => write!(f, "cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Formats a resolved device the way users name it.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Cpu => "cpu".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// Numeric precision of the large convolutions. The mapping network, the encoder's final linear layer
/// and the (de)modulation sums always stay in fp32: they are the layers that leave the half range
/// (gpen.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
    Bf16,
}

impl Precision {
    pub fn kind(self) -> Kind {
        match self {
            Precision::Fp32 => Kind::Float,
            Precision::Fp16 => Kind::Half,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    /// fp16 convolutions need CUDA. bf16 also runs on the CPU (where it is slower than fp32 on most
    /// processors, but lets the reduced-precision path be checked without a GPU).
    pub fn check_device(self, device: Device) -> Result<(), DeviceError> {
        if self == Precision::Fp16 && device == Device::Cpu {
            return Err(DeviceError::Fp16OnCpu);
        }
        Ok(())
    }
}

impl FromStr for Precision {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => Ok(Precision::Fp32),
            "fp16" | "f16" | "half" | "float16" => Ok(Precision::Fp16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            _ => Err(ConfigError::BadValue(format!("unknown precision '{s}': expected fp32, fp16 or bf16"))),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse::<DeviceChoice>(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse::<DeviceChoice>(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:2".parse::<DeviceChoice>(), Ok(DeviceChoice::Cuda(2)));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn cuda_resolves_where_there_is_a_gpu_and_is_a_clear_error_where_there_is_none() {
        if tch::Cuda::is_available() {
            assert_eq!(DeviceChoice::Cuda(0).resolve(), Ok(Device::Cuda(0)));
            assert_eq!(DeviceChoice::Auto.resolve(), Ok(Device::Cuda(0)));
        } else {
            let err = DeviceChoice::Cuda(0).resolve().unwrap_err();
            assert!(err.to_string().contains("no CUDA device"), "{err}");
            assert_eq!(DeviceChoice::Auto.resolve(), Ok(Device::Cpu));
        }
    }

    #[test]
    fn fp16_is_refused_on_the_cpu() {
        assert!(Precision::Fp16.check_device(Device::Cpu).is_err());
        assert!(Precision::Bf16.check_device(Device::Cpu).is_ok());
        assert!(Precision::Fp32.check_device(Device::Cpu).is_ok());
        assert_eq!("bf16".parse::<Precision>(), Ok(Precision::Bf16));
    }
}
