//! Optimisation: from a [`Problem`](crate::problem::Problem) to a
//! [`Solution`](crate::problem::Solution).
//!
//! [`greedy`] is the seed's `decide_swap` baseline; [`mip`] is the one mixed-integer program
//! (formulation, warm start, HiGHS); [`decompose`] splits a large fleet into parts solved in
//! parallel, each warm-started from greedy, and [`rescue`] spends the migrations the parts
//! left across them.

pub mod decompose;
pub mod greedy;
pub mod mip;
pub mod rescue;
