//! [`Message`]: how values cross between processes, as bytes.
//!
//! grove does not depend on serde: a small trait, implemented for the types the seed programs
//! send (numbers, strings, byte vectors, options, vectors, tuples), keeps the dependency set
//! empty and the wire format obvious (little-endian fixed-size numbers, `u32` length
//! prefixes). For richer types implement [`Message`] by hand (a few lines, see
//! `examples/mp_manager.rs`), or encode with the serializer of your choice and send the bytes
//! with [`Connection::send_bytes`](super::Connection::send_bytes).

#![deny(unsafe_code)]

use std::io;

/// A value that can cross a process boundary as bytes.
///
/// `decode` reads exactly what `encode` wrote from the front of `input` and advances it.
///
/// ```
/// use grove::process::Message;
///
/// let v = (7u32, String::from("seven"), vec![Some(1.5f64), None]);
/// let mut bytes = Vec::new();
/// v.encode(&mut bytes);
/// let back = <(u32, String, Vec<Option<f64>>)>::decode(&mut &bytes[..]).unwrap();
/// assert_eq!(back, v);
/// ```
pub trait Message: Sized {
    /// Appends the value's bytes to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads a value from the front of `input`, advancing it.
    ///
    /// # Errors
    /// `InvalidData` if the bytes are not a value of this type (too short, bad UTF-8, a bad
    /// tag).
    fn decode(input: &mut &[u8]) -> io::Result<Self>;
}

/// The error for bytes that do not decode.
pub(crate) fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("grove: cannot decode a message: {what}"),
    )
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> io::Result<&'a [u8]> {
    if input.len() < n {
        return Err(invalid("it ends early"));
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

fn encode_len(n: usize, out: &mut Vec<u8>) {
    let n = u32::try_from(n).expect("grove: a message part longer than 4 GiB");
    out.extend_from_slice(&n.to_le_bytes());
}

fn decode_len(input: &mut &[u8]) -> io::Result<usize> {
    Ok(u32::decode(input)? as usize)
}

macro_rules! number {
    ($($t:ty),*) => {$(
        impl Message for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(input: &mut &[u8]) -> io::Result<Self> {
                let bytes = take(input, std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(bytes.try_into().expect("exact length")))
            }
        }
    )*};
}
number!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128, f32, f64);

impl Message for usize {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as u64).encode(out);
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        usize::try_from(u64::decode(input)?).map_err(|_| invalid("a usize out of range"))
    }
}

impl Message for isize {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as i64).encode(out);
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        isize::try_from(i64::decode(input)?).map_err(|_| invalid("an isize out of range"))
    }
}

impl Message for () {
    fn encode(&self, _: &mut Vec<u8>) {}
    fn decode(_: &mut &[u8]) -> io::Result<Self> {
        Ok(())
    }
}

impl Message for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        match u8::decode(input)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(invalid("a bool that is neither 0 nor 1")),
        }
    }
}

impl Message for char {
    fn encode(&self, out: &mut Vec<u8>) {
        u32::from(*self).encode(out);
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        char::from_u32(u32::decode(input)?).ok_or_else(|| invalid("not a char"))
    }
}

impl Message for String {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        let n = decode_len(input)?;
        let bytes = take(input, n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| invalid("a string that is not UTF-8"))
    }
}

impl<T: Message> Message for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_len(self.len(), out);
        for v in self {
            v.encode(out);
        }
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        let n = decode_len(input)?;
        // Each element takes at least... nothing (`()`), so cap the up-front allocation.
        let mut v = Vec::with_capacity(n.min(input.len()));
        for _ in 0..n {
            v.push(T::decode(input)?);
        }
        Ok(v)
    }
}

impl<T: Message> Message for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        match u8::decode(input)? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(input)?)),
            _ => Err(invalid("a bad Option tag")),
        }
    }
}

impl<T: Message, E: Message> Message for Result<T, E> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Ok(v) => {
                out.push(0);
                v.encode(out);
            }
            Err(e) => {
                out.push(1);
                e.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        match u8::decode(input)? {
            0 => Ok(Ok(T::decode(input)?)),
            1 => Ok(Err(E::decode(input)?)),
            _ => Err(invalid("a bad Result tag")),
        }
    }
}

impl<T: Message> Message for Box<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (**self).encode(out);
    }
    fn decode(input: &mut &[u8]) -> io::Result<Self> {
        T::decode(input).map(Box::new)
    }
}

macro_rules! tuple {
    ($($name:ident),+) => {
        impl<$($name: Message),+> Message for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
            fn decode(input: &mut &[u8]) -> io::Result<Self> {
                Ok(($($name::decode(input)?,)+))
            }
        }
    };
}
tuple!(A);
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);

/// Encodes `v` into a new buffer.
pub(crate) fn to_bytes<T: Message>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.encode(&mut out);
    out
}

/// Decodes a whole buffer as one `T` (trailing bytes are an error).
pub(crate) fn from_bytes<T: Message>(bytes: &[u8]) -> io::Result<T> {
    let mut input = bytes;
    let v = T::decode(&mut input)?;
    if !input.is_empty() {
        return Err(invalid("trailing bytes after the value"));
    }
    Ok(v)
}
