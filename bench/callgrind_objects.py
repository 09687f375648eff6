#!/usr/bin/env python3
"""Sums a callgrind profile's self cost (Ir, instructions executed) per
shared object, so bench/instructions.sh can say how many of a statement's
instructions ran in postgres, in libc, in the cipher library and in the
extension. Prints "object<TAB>instructions" lines, then "total<TAB>N".

The file format (valgrind's callgrind format, version 1): "ob=" names the
object of the functions that follow, "fn=" starts a function, a line of
numbers is "position cost" for the current function, and the one cost line
after "calls=" is the inclusive cost of that call, which is the callee's
and so is skipped here. Names may be compressed as "(id) name" on first
use and "(id)" after, in "ob=" and "cob=" lines alike."""
import sys
from collections import defaultdict


def object_costs(path):
    names = {}
    current = "?"
    costs = defaultdict(int)
    skip_next_cost = False
    with open(path) as f:
        for line in f:
            if line.startswith(("ob=", "cob=")):
                # "cob=" names a callee's object; it can be the first use of
                # a compressed name, so it is read for its name only.
                spec = line.partition("=")[2].strip()
                if spec.startswith("("):
                    ident, _, name = spec.partition(")")
                    name = name.strip()
                    if name:
                        names[ident] = name
                    spec = names.get(ident, spec)
                if line.startswith("ob="):
                    current = spec
            elif line.startswith("calls="):
                skip_next_cost = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                fields = line.split()
                if len(fields) >= 2:
                    costs[current] += int(fields[1])
    return costs


def main():
    costs = object_costs(sys.argv[1])
    for name, ir in sorted(costs.items(), key=lambda kv: -kv[1]):
        print(f"{name}\t{ir}")
    print(f"total\t{sum(costs.values())}")


if __name__ == "__main__":
    main()
