#pragma once

// The parts one backend_shard composes, in the order they are built; only the shard's own
// files include this.

#include <boost/asio/steady_timer.hpp>

#include "broker/backend_shard.hpp"
#include "broker/lease_roles.hpp"
#include "catalog/catalog_writer.hpp"
#include "leases/deadline_queue.hpp"
#include "leases/lease_desk.hpp"
#include "leases/lease_table.hpp"
#include "leases/waiting_line.hpp"
#include "pg/connection_pool.hpp"
#include "pool/pool_operations.hpp"
#include "pool/recycler.hpp"
#include "pool/reset_in_place.hpp"
#include "pool/session_ender.hpp"
#include "templates/client_builds.hpp"
#include "templates/source_builds.hpp"
#include "templates/template_set.hpp"

namespace pglease {

struct backend_shard::parts {
    parts(const boost::asio::any_io_executor& executor, const backend_endpoint& endpoint,
          const shard_config& config, broker_metrics& metrics, backend_life& life);

    /// Makes `ready` the version `entry` serves; the one it replaces drains.
    void promote(template_entry& entry, std::unique_ptr<template_pool> ready);
    /// The API's view of `entry`.
    template_status status_of(const template_entry& entry) const;

    /// Clones and drops, plus room for template builds, which must not wait behind them.
    pg::connection_pool operations;
    /// Comments on the lease path: a slow CREATE DATABASE never delays a lease of an idle clone.
    pg::connection_pool catalog;
    /// Ending the sessions on clones, which may wait for them to exit: nothing else waits
    /// behind it.
    pg::connection_pool sessions;
    /// Resets in place read the WAL over these.
    pg::connection_pool maintenance;
    deadline_queue deadlines;
    template_set templates;
    lease_table leases;
    waiting_line waiting;
    catalog_writer writer;
    session_ender ender;
    pool_operations pool;
    reclone recloning;
    lease_role_sweeper roles;
    reset_in_place recycling;
    lease_desk desk;
    source_builds sources;
    client_builds clients;
    boost::asio::steady_timer watch_timer;
    lease_settings default_lease;
};

}  // namespace pglease
