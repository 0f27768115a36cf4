//! Command-line values spelled as the library's words.
//!
//! The library's enums know their words and help ([`Named`]) but not clap, so the
//! command-line syntax stays out of the library's API; this parser offers those words
//! (and their help) to clap.

use chameleon::named::Named;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use std::marker::PhantomData;

/// Parses one of `T`'s words; `--help` lists them with their help.
pub(super) struct Words<T>(PhantomData<T>);

/// The parser of `T`'s words, for `#[arg(value_parser = words::<T>())]`.
pub(super) fn words<T: Named>() -> Words<T> {
    Words(PhantomData)
}

/// The value `--help` and error messages show for `value`.
pub(super) fn possible<T: Named>(value: T) -> PossibleValue {
    PossibleValue::new(value.name()).help(value.help().trim_end_matches('.'))
}

impl<T> Clone for Words<T> {
    fn clone(&self) -> Self {
        Words(PhantomData)
    }
}

impl<T: Named + Send + Sync> TypedValueParser for Words<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let word = PossibleValuesParser::new(T::all().iter().map(|&v| possible(v)))
            .parse_ref(cmd, arg, value)?;
        T::all()
            .iter()
            .copied()
            .find(|v| v.name() == word)
            .ok_or_else(|| clap::Error::new(clap::error::ErrorKind::InvalidValue).with_cmd(cmd))
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(T::all().iter().map(|&v| possible(v))))
    }
}
