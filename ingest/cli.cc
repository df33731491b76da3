#include "ingest/cli.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "ingest/control_client.h"
#include "progress/progress_line.h"
#include "store/store.h"

namespace kvfs::ingest {

namespace {

std::string Field(const Message& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? std::string() : it->second;
}

// What a request was about, for messages.
std::string Subject(const Message& req) {
  for (const char* key : {"tarball", "object", "name"}) {
    std::string v = Field(req, key);
    if (!v.empty()) return v;
  }
  return "?";
}

std::string Describe(const Message& req, const Message& resp) {
  const std::string op = Field(req, "op");
  std::string out;
  if (op == "ingest") {
    out = "ingested " + Subject(req) + " as /" + Field(resp, "name") + " (range " +
          Field(resp, "range") + "): " + Field(resp, "directories") + " directories, " +
          Field(resp, "files") + " files, " + Field(resp, "symlinks") + " symlinks, " +
          Field(resp, "hard_links") + " hard links, " + Field(resp, "bytes") + " bytes";
    if (Field(resp, "skipped") != "0") out += ", " + Field(resp, "skipped") + " skipped";
    if (Field(resp, "replaced_range") != "0") {
      out += "; replaced range " + Field(resp, "replaced_range");
    }
    out += "; build " + Field(resp, "build_seconds") + " s, load " + Field(resp, "load_seconds") +
           " s, publish " + Field(resp, "publish_seconds") + " s";
  } else if (op == "export") {
    out = "exported /" + Field(req, "name") + " to " + Field(resp, "object") + ": " +
          Field(resp, "members") + " members, " + Field(resp, "bytes") + " bytes of contents, " +
          Field(resp, "object_bytes") + " bytes in " + Field(resp, "seconds") + " s";
    if (!Field(resp, "evicted_range").empty()) {
      out += "; evicted (" + Field(resp, "freed_bytes") + " bytes, " + Field(resp, "freed_inodes") +
             " inodes freed)";
    }
  } else if (op == "evict") {
    out = "evicted /" + Field(req, "name") + " (range " + Field(resp, "evicted_range") +
          "): " + Field(resp, "freed_bytes") + " bytes, " + Field(resp, "freed_inodes") +
          " inodes freed";
  } else {
    out = op + ": ok";
  }
  return out;
}

// A store URL as the server must see it: a relative local path made
// absolute (the server resolves paths itself).
std::string AbsoluteStoreUrl(const std::string& url) {
  if (url.empty() || url.find("://") != std::string::npos || url.front() == '/') return url;
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(url, ec);
  return ec ? url : abs.lexically_normal().string();
}

// Adds the store settings of `cl` to a request that opens a store, and
// makes its store paths absolute.
void AddStoreFields(const CommandLine& cl, Message* req) {
  bool opens_store = false;
  for (const char* key : {"store", "claims"}) {
    auto it = req->find(key);
    if (it == req->end()) continue;
    it->second = AbsoluteStoreUrl(it->second);
    opens_store = true;
  }
  if (!opens_store) return;
  for (const char* setting : store::kStoreSettings) {
    auto it = cl.options.find(store::StoreSettingOption(setting).substr(2));
    if (it != cl.options.end()) (*req)[setting] = it->second;
  }
}

}  // namespace

Status ParseCommandLine(int argc, char** argv, const std::set<std::string>& flags,
                        const std::set<std::string>& valued, CommandLine* out) {
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (!options_done && (a == "-h" || a == "--help")) {
      out->help = true;
      continue;
    }
    if (options_done || a.size() < 3 || a.rfind("--", 0) != 0) {
      out->args.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    const bool has_value = eq != std::string::npos;
    if (has_value) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    if ((flags.count(name) || name == "no-progress") && !has_value) {
      out->options[name] = "1";
    } else if (valued.count(name) || name == "db" || name == "backend" || name == "kv-options" ||
               store::StoreSettingOfOption("--" + name) != nullptr) {
      if (!has_value) {
        if (i + 1 >= argc) return Status::InvalidArgument("--" + name + " needs a value");
        value = argv[++i];
      }
      out->options[name] = value;
    } else {
      return Status::InvalidArgument("unknown option " + a);
    }
  }
  return Status::OK();
}

int RunRequests(const CommandLine& cl, const std::vector<Message>& requests) {
  auto option = [&](const char* name) {
    auto it = cl.options.find(name);
    return it == cl.options.end() ? std::string() : it->second;
  };
  KVStoreSpec spec;
  Status parsed = ParseKVStoreSpec(option("db"), option("backend"), option("kv-options"), &spec);
  if (!parsed.ok()) {
    std::cerr << "--kv-options: " << parsed.ToString() << "\n";
    return 2;
  }
  int exit_status = 0;
  if (spec.path.empty()) {
    std::cerr << "--db PATH is required\n";
    return 2;
  }
  // Progress on a terminal (stderr), unless --no-progress; nothing in scripts.
  progress::ProgressLine line(STDERR_FILENO,
                              cl.options.count("no-progress") == 0 && ::isatty(STDERR_FILENO));
  progress::ProgressRegistry local;  // the requests run here, if no server has the store
  const std::string socket = ControlSocketPath(spec.path);
  uint64_t sequence = 0;
  for (Message req : requests) {
    AddStoreFields(cl, &req);
    const std::string id = "cli-" + std::to_string(::getpid()) + "-" + std::to_string(++sequence);
    if (line.enabled()) req["progress_id"] = id;
    auto poll = [&](progress::ProgressSnapshot* snap) {
      return local.Find(id, snap) || AskProgress(socket, id, snap);
    };
    Message resp;
    bool via_server = false;
    Status s = progress::RunShowingProgress(
        &line, [&] { return RunRequest(spec, req, &resp, &via_server, &local); }, poll);
    if (s.ok()) s = ResponseStatus(resp);
    if (!s.ok()) {
      std::cerr << Field(req, "op") << " " << Subject(req) << ": " << s.ToString() << "\n";
      exit_status = 2;
      continue;
    }
    std::cout << Describe(req, resp) << (via_server ? " [via server]" : "") << "\n";
  }
  return exit_status;
}

int UsageError(const char* usage, const std::string& error) {
  if (!error.empty()) std::cerr << "error: " << error << "\n\n";
  std::cerr << usage << kStoreUsage << store::kStoreSettingsUsage;
  return 2;
}

int PrintUsage(const char* usage) {
  std::cout << usage << kStoreUsage << store::kStoreSettingsUsage;
  return 0;
}

}  // namespace kvfs::ingest
