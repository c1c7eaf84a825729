//! A reader for the MATLAB level-5 MAT-file format (also MATLAB 7's, whose variables may be
//! zlib-compressed), enough for the ILSVRC2012 devkit's `meta.mat`: numeric, character, cell
//! and structure arrays. Sparse and object arrays are read as [`MatValue::Unsupported`].
//!
//! Layout (MathWorks, "MAT-File Format", level 5): a 128-byte header whose last two bytes are
//! `IM` (little-endian) or `MI` (big-endian), then data elements, each an 8-byte tag (type,
//! byte count) and its data padded to 8 bytes, or a 4-byte "small element" tag with up to 4
//! bytes of data. A variable is an `miMATRIX` element (or an `miCOMPRESSED` one holding it) made
//! of array flags, dimensions, name and the class's parts. Pure-Rust crates that read structure
//! arrays exist only in early, panicking versions, so this one is small and checks every length:
//! bad input is an error that says where, never a panic.

use std::io::Read;

use flate2::read::ZlibDecoder;

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;
const MI_UTF16: u32 = 17;

const MX_CELL: u8 = 1;
const MX_STRUCT: u8 = 2;
const MX_CHAR: u8 = 4;

/// Nesting deeper than this is refused (the devkit nests three levels).
const MAX_DEPTH: usize = 32;
/// A compressed variable may not inflate past this (the devkit's is under 1 MB).
const MAX_INFLATED: u64 = 1 << 30;

/// One MATLAB array.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A numeric or logical array, converted to f64 (real part), column-major.
    Numeric {
        /// Dimensions.
        dims: Vec<usize>,
        /// Values.
        data: Vec<f64>,
    },
    /// A character array; a row vector is its string, a matrix its column-major characters.
    Char {
        /// Dimensions.
        dims: Vec<usize>,
        /// Characters.
        text: String,
    },
    /// A cell array, column-major.
    Cell {
        /// Dimensions.
        dims: Vec<usize>,
        /// Cells.
        cells: Vec<MatValue>,
    },
    /// A structure array: `elements[i][f]` is field `f` of element `i` (column-major).
    Struct {
        /// Dimensions.
        dims: Vec<usize>,
        /// Field names.
        fields: Vec<String>,
        /// Field values per element.
        elements: Vec<Vec<MatValue>>,
    },
    /// A class this reader does not decode (sparse, object, function handle).
    Unsupported {
        /// The MATLAB class number.
        class: u8,
    },
}

impl MatValue {
    /// The first value of a numeric array.
    pub fn scalar(&self) -> Option<f64> {
        match self {
            Self::Numeric { data, .. } => data.first().copied(),
            _ => None,
        }
    }

    /// The text of a character array.
    pub fn text(&self) -> Option<&str> {
        match self {
            Self::Char { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Field `name` of every element of a structure array.
    pub fn field(&self, name: &str) -> Option<Vec<&MatValue>> {
        match self {
            Self::Struct {
                fields, elements, ..
            } => {
                let f = fields.iter().position(|n| n == name)?;
                Some(elements.iter().map(|e| &e[f]).collect())
            }
            _ => None,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn u32_at(&self, at: usize) -> Result<u32, String> {
        let b: [u8; 4] = self
            .buf
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("truncated at byte {at}"))?;
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The next data element: its type and data.
    fn element(&mut self) -> Result<(u32, &'a [u8]), String> {
        let first = self.u32_at(self.pos)?;
        // A small element packs the byte count in the upper half of the first word and its
        // data in the second word. (The big-endian form is the same pair of 16-bit halves.)
        if first >> 16 != 0 {
            let (ty, n) = (first & 0xffff, (first >> 16) as usize);
            if n > 4 {
                return Err(format!(
                    "small data element at byte {} claims {n} bytes",
                    self.pos
                ));
            }
            let data = self
                .buf
                .get(self.pos + 4..self.pos + 4 + n)
                .ok_or_else(|| format!("truncated at byte {}", self.pos))?;
            self.pos += 8;
            return Ok((ty, data));
        }
        let n = self.u32_at(self.pos + 4)? as usize;
        let start = self.pos + 8;
        let data = self.buf.get(start..start + n).ok_or_else(|| {
            format!(
                "data element at byte {} claims {n} bytes, {} remain",
                self.pos,
                self.buf.len().saturating_sub(start)
            )
        })?;
        self.pos = start + n.next_multiple_of(8);
        Ok((first, data))
    }
}

fn words<const N: usize>(data: &[u8], big_endian: bool) -> impl Iterator<Item = [u8; N]> + '_ {
    data.chunks_exact(N).map(move |c| {
        let mut b: [u8; N] = c.try_into().expect("chunk size");
        if big_endian {
            b.reverse();
        }
        b
    })
}

/// Numeric data of any storage type as f64 (MATLAB stores doubles in the smallest integer
/// type that holds them).
fn numbers(ty: u32, data: &[u8], be: bool) -> Result<Vec<f64>, String> {
    Ok(match ty {
        MI_INT8 => data.iter().map(|&b| f64::from(b as i8)).collect(),
        MI_UINT8 => data.iter().map(|&b| f64::from(b)).collect(),
        MI_INT16 => words::<2>(data, be)
            .map(|b| f64::from(i16::from_le_bytes(b)))
            .collect(),
        MI_UINT16 => words::<2>(data, be)
            .map(|b| f64::from(u16::from_le_bytes(b)))
            .collect(),
        MI_INT32 => words::<4>(data, be)
            .map(|b| f64::from(i32::from_le_bytes(b)))
            .collect(),
        MI_UINT32 => words::<4>(data, be)
            .map(|b| f64::from(u32::from_le_bytes(b)))
            .collect(),
        MI_SINGLE => words::<4>(data, be)
            .map(|b| f64::from(f32::from_le_bytes(b)))
            .collect(),
        MI_DOUBLE => words::<8>(data, be).map(f64::from_le_bytes).collect(),
        MI_INT64 => words::<8>(data, be)
            .map(|b| i64::from_le_bytes(b) as f64)
            .collect(),
        MI_UINT64 => words::<8>(data, be)
            .map(|b| u64::from_le_bytes(b) as f64)
            .collect(),
        other => return Err(format!("data type {other} is not numeric")),
    })
}

fn text(ty: u32, data: &[u8], be: bool) -> Result<String, String> {
    match ty {
        MI_UINT16 | MI_UTF16 => {
            let units: Vec<u16> = words::<2>(data, be).map(u16::from_le_bytes).collect();
            Ok(String::from_utf16_lossy(&units))
        }
        MI_UINT8 | MI_INT8 | MI_UTF8 => Ok(String::from_utf8_lossy(data).into_owned()),
        other => Err(format!("data type {other} is not character data")),
    }
}

fn matrix(data: &[u8], be: bool, depth: usize) -> Result<(String, MatValue), String> {
    if depth > MAX_DEPTH {
        return Err(format!("arrays nested deeper than {MAX_DEPTH} levels"));
    }
    // An empty miMATRIX is an empty array (MATLAB writes empty cells so).
    if data.is_empty() {
        let value = MatValue::Numeric {
            dims: vec![0, 0],
            data: Vec::new(),
        };
        return Ok((String::new(), value));
    }
    let mut r = Reader {
        buf: data,
        pos: 0,
        big_endian: be,
    };
    let (_, flags) = r.element()?;
    let flags = numbers(MI_UINT32, flags, be)?;
    let class = *flags.first().ok_or("array flags missing")? as u32 as u8;
    let (ty, dims) = r.element()?;
    let dims: Vec<usize> = numbers(ty, dims, be)?
        .into_iter()
        .map(|d| d as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or("dimensions overflow")?;
    let (_, name) = r.element()?;
    let name = String::from_utf8_lossy(name).into_owned();
    let value = match class {
        MX_CELL => {
            let mut cells = Vec::new();
            for _ in 0..count {
                cells.push(child(&mut r, be, depth)?);
            }
            MatValue::Cell { dims, cells }
        }
        MX_STRUCT => {
            let (ty, len) = r.element()?;
            let len = *numbers(ty, len, be)?
                .first()
                .ok_or("field name length missing")? as usize;
            let (_, names) = r.element()?;
            if len == 0 {
                return Err("field name length 0".into());
            }
            let fields: Vec<String> = names
                .chunks(len)
                .map(|c| {
                    let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                    String::from_utf8_lossy(&c[..end]).into_owned()
                })
                .collect();
            let mut elements = Vec::new();
            for _ in 0..count {
                let mut values = Vec::with_capacity(fields.len());
                for _ in 0..fields.len() {
                    values.push(child(&mut r, be, depth)?);
                }
                elements.push(values);
            }
            MatValue::Struct {
                dims,
                fields,
                elements,
            }
        }
        MX_CHAR => {
            let text = if count == 0 {
                String::new()
            } else {
                let (ty, chars) = r.element()?;
                text(ty, chars, be)?
            };
            MatValue::Char { dims, text }
        }
        6..=15 => {
            let data = if count == 0 && r.done() {
                Vec::new()
            } else {
                let (ty, real) = r.element()?;
                numbers(ty, real, be)?
            };
            if data.len() != count {
                return Err(format!(
                    "array '{name}' has dimensions {dims:?} but {} values",
                    data.len()
                ));
            }
            MatValue::Numeric { dims, data }
        }
        class => MatValue::Unsupported { class },
    };
    Ok((name, value))
}

fn child(r: &mut Reader<'_>, be: bool, depth: usize) -> Result<MatValue, String> {
    let at = r.pos;
    let (ty, data) = r.element()?;
    if ty != MI_MATRIX {
        return Err(format!(
            "expected an array (type 14) at byte {at}, found type {ty}"
        ));
    }
    Ok(matrix(data, be, depth + 1)?.1)
}

/// The named variables of a MAT file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Vec<(String, MatValue)>, String> {
    if bytes.len() < 128 {
        return Err(format!(
            "{} bytes: too short for a MAT-file header (128)",
            bytes.len()
        ));
    }
    let big_endian = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => {
            return Err(
                "no MAT-file endian indicator at byte 126 (a MATLAB 7.3 / HDF5 file or not a \
                 MAT file)"
                    .into(),
            );
        }
    };
    let mut r = Reader {
        buf: bytes,
        pos: 128,
        big_endian,
    };
    let mut out = Vec::new();
    while !r.done() {
        let at = r.pos;
        let (ty, data) = r.element()?;
        match ty {
            MI_MATRIX => out.push(matrix(data, big_endian, 0)?),
            MI_COMPRESSED => {
                let mut inflated = Vec::new();
                ZlibDecoder::new(data)
                    .take(MAX_INFLATED)
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("compressed variable at byte {at}: {e}"))?;
                let mut inner = Reader {
                    buf: &inflated,
                    pos: 0,
                    big_endian,
                };
                while !inner.done() {
                    let (ty, data) = inner.element()?;
                    if ty == MI_MATRIX {
                        out.push(matrix(data, big_endian, 0)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
