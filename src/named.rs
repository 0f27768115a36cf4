//! Enums whose variants are fixed words in files, reports and on the command line.
//!
//! `named_enum!` writes the word of each variant once and derives the rest from it:
//! `ALL` in declaration order, `name()`, `Display`, and a `FromStr` whose error lists
//! the words it accepts, so the mapping cannot drift between directions.

/// Declares an enum with one word per variant (`Variant = "word"`) and `what` naming
/// the kind of word in errors; the enum's attributes pass through, and each variant's
/// doc comment is also its [`Named::help`].
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: $what:literal {
            $($(#[doc = $doc:literal])* $variant:ident = $word:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $($(#[doc = $doc])* $variant),+
        }

        impl $crate::named::Named for $name {
            fn all() -> &'static [$name] {
                &$name::ALL
            }

            fn name(self) -> &'static str {
                $name::name(self)
            }

            fn help(self) -> &'static str {
                match self {
                    $($name::$variant => concat!($($doc),*).trim()),+
                }
            }
        }

        impl $name {
            /// Every variant, in declaration order.
            $vis const ALL: [$name; [$($word),+].len()] = [$($name::$variant),+];

            /// The variant's word, as written in files and on the command line.
            $vis fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($word => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} `{s}` (expected {})",
                        $what,
                        $crate::named::one_of(&[$($word),+])
                    )),
                }
            }
        }
    };
}

pub(crate) use named_enum;

/// An enum declared with `named_enum!`: the words a command line may offer for it.
pub trait Named: Copy + Sized + 'static {
    /// Every variant, in declaration order.
    fn all() -> &'static [Self];
    /// The variant's word.
    fn name(self) -> &'static str;
    /// The variant's doc comment, as help for the word.
    fn help(self) -> &'static str;
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn one_of(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    named_enum!(
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Colour: "colour" {
            /// The colour of fire.
            Red = "red",
            /// Navy,
            /// or darker.
            DarkBlue = "dark_blue",
            Green = "green",
        }
    );

    #[test]
    fn words_go_both_ways_and_errors_list_them() {
        for c in Colour::ALL {
            assert_eq!(c.name().parse::<Colour>(), Ok(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(Colour::ALL, [Colour::Red, Colour::DarkBlue, Colour::Green]);
        assert_eq!(
            "blue".parse::<Colour>(),
            Err("unknown colour `blue` (expected red, dark_blue or green)".to_owned())
        );
        assert_eq!(one_of(&["a", "b"]), "a or b");
    }

    #[test]
    fn the_trait_offers_every_word_with_its_doc_as_help() {
        let words: Vec<_> = <Colour as Named>::all()
            .iter()
            .map(|&c| Named::name(c))
            .collect();
        assert_eq!(words, ["red", "dark_blue", "green"]);
        assert_eq!(Colour::Red.help(), "The colour of fire.");
        assert_eq!(Colour::DarkBlue.help(), "Navy, or darker.");
        assert_eq!(Colour::Green.help(), "");
    }
}
