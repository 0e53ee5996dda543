#!/usr/bin/env python3
"""Regenerates sensor/src/reassembly/testdata/tshark-streams.tsv: for every TCP stream that
starts with a SYN in the test pcaps, the bytes each side sent (and the bytes tshark reports missing) as `tshark -q -z
follow,tcp,raw,N` reassembles them (length and SHA-256 per direction). The reassembly tests
compare Tocsin's streams against these; they never run tshark themselves.

Usage: scripts/stream-expectations.py [TESTDATA_DIR]   (default ../shared/testdata)
"""
import hashlib
import os
import re
import subprocess
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
testdata = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "testdata")
out_path = os.path.join(root, "sensor", "src", "reassembly", "testdata", "tshark-streams.tsv")

pcaps = sorted(
    os.path.join("pcaps", f) for f in os.listdir(os.path.join(testdata, "pcaps")) if f.endswith(".pcap")
)


def tshark(args):
    return subprocess.run(["tshark", *args], check=True, capture_output=True, text=True).stdout


rows = []
for rel in pcaps:
    path = os.path.join(testdata, rel)
    syn_streams = sorted(
        {int(s) for s in tshark(["-r", path, "-Y", "tcp.flags.syn==1 && tcp.flags.ack==0", "-T", "fields", "-e", "tcp.stream"]).split()}
    )
    for i in range(0, len(syn_streams), 50):
        batch = syn_streams[i : i + 50]
        args = ["-r", path, "-q"]
        for s in batch:
            args += ["-z", f"follow,tcp,raw,{s}"]
        text = tshark(args)
        for block in text.split("===================================================================\nFollow: tcp,raw\n")[1:]:
            lines = block.splitlines()
            stream = int(lines[0].split("eq")[1])
            node0 = lines[1].split(": ", 1)[1]
            node1 = lines[2].split(": ", 1)[1]
            data = [bytearray(), bytearray()]
            gaps = [0, 0]
            for line in lines[3:]:
                if line.startswith("====="):
                    break
                side = 1 if line.startswith("\t") else 0
                chunk = bytes.fromhex(line.strip())
                # tshark marks lost data with a text line, not with bytes of the stream.
                m = re.fullmatch(rb"\[(\d+) bytes missing in capture file\]\x00", chunk)
                if m:
                    gaps[side] += int(m.group(1))
                else:
                    data[side] += chunk
            rows.append(
                "\t".join(
                    [rel, str(stream), node0, node1]
                    + [f"{len(d)}\t{hashlib.sha256(d).hexdigest()}" for d in data]
                + [str(g) for g in gaps]
                )
            )

with open(out_path, "w") as f:
    f.write("# pcap\tstream\tnode0\tnode1\tlen0\tsha256_0\tlen1\tsha256_1\tgap0\tgap1  (scripts/stream-expectations.py)\n")
    f.write("\n".join(rows) + "\n")
print(f"{len(rows)} streams -> {out_path}")
