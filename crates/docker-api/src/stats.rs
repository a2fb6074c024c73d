//! `GET /containers/{id}/stats`: one document per sample, with the previous sample's CPU
//! figures for the client to compute a rate.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Empty;

/// One stats document.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerStats {
    pub id: String,
    /// `/name`.
    pub name: String,
    /// When this sample was read (Docker's zero time before the first).
    pub read: String,
    /// When the previous one was.
    pub preread: String,
    pub pids_stats: PidsStats,
    pub cpu_stats: CpuStats,
    pub precpu_stats: CpuStats,
    pub memory_stats: MemoryStats,
    pub blkio_stats: Empty,
    pub networks: HashMap<String, Value>,
}

/// Processes in the container.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PidsStats {
    pub current: u64,
    pub limit: u64,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: CpuUsage,
    pub system_cpu_usage: u64,
    pub online_cpus: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttling_data: Option<ThrottlingData>,
}

/// `cpu_usage` of [`CpuStats`]; the details only once there is a sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CpuUsage {
    pub total_usage: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percpu_usage: Option<Vec<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_kernelmode: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_in_usermode: Option<u64>,
}

/// CFS throttling of a container with a CPU limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ThrottlingData {
    pub periods: u64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
}

/// Memory use in bytes; empty before the first sample.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// The kernel's own counters, as the runtime reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Value>,
}
