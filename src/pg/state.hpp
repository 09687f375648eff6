// What the PostgreSQL-facing files share: the settings as the server parsed
// them and the figures of the installation, filled in by _PG_init in the
// postmaster and inherited by every child.
#pragma once

#include "pg/bridge.hpp"

struct EphemeralCryptState {
    bool ready;  // key, layer and self-test all succeeded
    ec_settings settings;
    int objects_patched;
    int slots_patched;
    int wal_segments_converted;
    ec_policy policy;        // the effective policy (settings or policy file)
    char policy_digest[65];  // SHA-256 of its canonical rendering, hex
    bool policy_signed;
    bool policy_from_file;
};

extern EphemeralCryptState ec_state;
extern char* ec_policy_version;

const char* ec_degradation_name(int degradation);

// WAL restart bridge (wal_restart.cpp): register the shutdown sealer and the
// postmaster's exit hook; and, before the startup process runs, rebuild or
// remove WAL left by the previous instance (or refuse to start).
void ec_wal_restart_register();
void ec_wal_restart_prepare();
