//! The two folds of every evaluation: instances split by a hash of their id.
//!
//! A knob is chosen on one fold and its figures are reported on the other, both
//! ways, so no number comes from the instances it was tuned on. The split depends on
//! the id alone: the same instance is in the same fold in every fleet, window and
//! run, whatever else is in the data.

use sha2::{Digest, Sha256};

/// Which of the two folds `id` belongs to (0 or 1): the low bit of sha256(id)'s first byte.
pub fn fold(id: &str) -> u8 {
    Sha256::digest(id.as_bytes())[0] & 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_fixed_by_the_id_and_roughly_even() {
        // sha256 of "a", "e", "306" and "x" starts ca, 3f, 38 and 2d.
        assert_eq!([fold("a"), fold("e"), fold("306"), fold("x")], [0, 1, 0, 1]);
        let ones: u32 = (0..1000).map(|k| u32::from(fold(&format!("vm_{k}")))).sum();
        assert!((450..=550).contains(&ones), "{ones} of 1000 in fold 1");
    }
}
