//! `chameleon import`: telemetry traces and job logs share one command.

use super::*;

/// What `import` reads: a telemetry trace or a job log.
#[derive(Clone, Copy)]
pub(super) enum ImportSource {
    Telemetry(Source),
    Jobs(JobSource),
}

impl ValueEnum for ImportSource {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ImportSource::Telemetry(Source::Bitbrains),
            ImportSource::Telemetry(Source::Azure),
            ImportSource::Telemetry(Source::Nab),
            ImportSource::Jobs(JobSource::Swf),
            ImportSource::Jobs(JobSource::AzureFunctions),
            ImportSource::Jobs(JobSource::AzureVmArrivals),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            ImportSource::Telemetry(s) => Some(super::words::possible(*s)),
            ImportSource::Jobs(s) => Some(super::words::possible(*s)),
        }
    }
}
