package ingest

import (
	"errors"
	"testing"

	"notifier/cdc"
)

func TestTxnVersion(t *testing.T) {
	const u1, u2 = "3e11fa47-71ca-11e1-9e33-c80aa9429562", "4f22ab58-82db-22f2-af44-d91bb0530673"
	tests := []struct {
		name string
		pos  cdc.Position
		want uint64
	}{
		{"zero position", cdc.Position{}, 0},
		{"mariadb one domain", cdc.Position{GTID: "0-1-42"}, 42},
		{"mariadb multi-domain", cdc.Position{GTID: "0-1-42,1-2-7,5-3-100"}, 149},
		{"mariadb one more transaction in domain 1", cdc.Position{GTID: "0-1-42,1-2-8,5-3-100"}, 150},
		{"mariadb domain listed twice counts its highest seq", cdc.Position{GTID: "0-1-42,0-2-40"}, 42},
		{"mariadb file:pos ignored when there is a gtid", cdc.Position{GTID: "0-1-42", File: "mysql-bin.000009", Pos: 4}, 42},
		{"mysql one interval", cdc.Position{GTID: u1 + ":1-42"}, 42},
		{"mysql intervals count transactions", cdc.Position{GTID: u1 + ":1-42:50-60"}, 53},
		{"mysql filling a gap adds one", cdc.Position{GTID: u1 + ":1-42:44-60"}, 59},
		{"mysql the gap filled: merged intervals", cdc.Position{GTID: u1 + ":1-60"}, 60},
		{"mysql single transactions", cdc.Position{GTID: u1 + ":1:3:5"}, 3},
		{"mysql two servers, upper case, spaces, newline", cdc.Position{GTID: u1 + ":1-5,\n " + "4F22AB58-82DB-22F2-AF44-D91BB0530673" + ":1-27"}, 32},
		{"mysql 8.4 tagged", cdc.Position{GTID: u1 + ":1-5:batch:1-3," + u2 + ":2"}, 9},
		{"file:pos", cdc.Position{File: "mysql-bin.000123", Pos: 4567}, 123<<32 | 4567},
		{"file:pos next file is after any pos of the previous", cdc.Position{File: "mysql-bin.000124", Pos: 4}, 124<<32 | 4},
		{"file:pos largest pos", cdc.Position{File: "relay.9", Pos: 1<<32 - 1}, 9<<32 | (1<<32 - 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := TxnVersion(tt.pos)
			if err != nil || got != tt.want {
				t.Fatalf("TxnVersion(%s) = %d, %v; want %d", tt.pos, got, err, tt.want)
			}
			// The same position parsed back from its text (a checkpoint) has the same version.
			if tt.pos.IsZero() {
				return
			}
			p, err := cdc.ParsePosition(tt.pos.String())
			if err != nil {
				t.Fatal(err)
			}
			if again, err := TxnVersion(p); err != nil || again != got {
				t.Fatalf("TxnVersion(ParsePosition(%q)) = %d, %v; want %d", tt.pos.String(), again, err, got)
			}
		})
	}
}

func TestTxnVersionRejectsUnknownPositions(t *testing.T) {
	for _, p := range []cdc.Position{
		{GTID: "0-1"},
		{GTID: "0-1-x"},
		{GTID: "snapshot:db.t:[1]"},
		{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:5-1"},
		{GTID: "3e11fa47-71ca-11e1-9e33-c80aa9429562:"},
		{GTID: "0-1-18446744073709551615,1-1-1"},
		{GTID: "0-1-4611686018427387904"}, // 1<<62: over state.MaxTxnVersion
		{File: "mysql-bin", Pos: 4},
		{File: "mysql-bin.1073741824", Pos: 4},
	} {
		if v, err := TxnVersion(p); !errors.Is(err, ErrTxnVersion) {
			t.Errorf("TxnVersion(%s) = %d, %v; want ErrTxnVersion", p, v, err)
		}
	}
}

// TestTxnVersionIncreasesAlongAStream: each transaction adds one GTID to the set (a new
// domain or server too), and the version grows strictly.
func TestTxnVersionIncreasesAlongAStream(t *testing.T) {
	stream := []string{"0-1-5", "0-1-6", "0-1-6,1-1-1", "0-2-7,1-1-1", "0-2-7,1-1-2", "0-2-7,1-1-2,9-9-1"}
	var last uint64
	for i, g := range stream {
		v, err := TxnVersion(cdc.Position{GTID: g})
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && v <= last {
			t.Fatalf("%s: version %d after %d", g, v, last)
		}
		last = v
	}
}
