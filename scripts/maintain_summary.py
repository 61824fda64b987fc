"""One line summarizing a maintain invocation's answer (read from stdin), for run-local.sh."""
import json
import sys


def main() -> int:
    answer = json.load(sys.stdin)
    if "errorMessage" in answer:
        print("FAILED: " + answer["errorMessage"])
        return 1
    parts = []
    if "check" in answer:
        check = answer["check"]
        parts.append(("all checks passed: " if check["ok"] else "CHECK FAILED: ")
                     + ", ".join(c["name"] + (" ok" if c["ok"] else " FAIL") for c in check["checks"]))
    jobs = answer.get("jobs", {})
    if "redrive" in jobs:
        r = jobs["redrive"]
        parts.append(f"redrive: {r['stranded']} stranded, {r['loaded']} loaded")
    if "purge" in jobs:
        p = jobs["purge"]
        parts.append(f"purge: {p['loaded_files_deleted']} loaded files deleted, {p['unloaded_kept']} unloaded kept")
    if "tombstones" in jobs:
        parts.append(f"tombstones: {len(jobs['tombstones'])} tables")
    if "backfill" in jobs:
        parts.append(f"backfill: {len(jobs['backfill'])} tables")
    if jobs.get("errors"):
        parts.append("errors: " + "; ".join(jobs["errors"]))
    print("; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
