package cdc_test

import (
	"fmt"
	"maps"
	"math"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"notifier/cdc"
)

const typesTable = `(
	id INT PRIMARY KEY,
	n_null INT NULL,
	amount DECIMAL(12,2),
	ubig BIGINT UNSIGNED,
	dt6 DATETIME(6),
	d DATE,
	ts TIMESTAMP NULL,
	j JSON,
	vb VARBINARY(16),
	e ENUM('new','active','done'),
	st SET('a','b','c'),
	ti TINYINT,
	dbl DOUBLE,
	txt TEXT,
	uti TINYINT UNSIGNED,
	usi SMALLINT UNSIGNED,
	umi MEDIUMINT UNSIGNED,
	ui INT UNSIGNED,
	mi MEDIUMINT,
	f FLOAT,
	y YEAR,
	b BIT(10),
	tm TIME,
	ch CHAR(4),
	zd DATETIME,
	old DATETIME,
	bl BLOB
)`

const typesRow = `(1, NULL, -1234.50, 18446744073709551615, '2026-01-02 03:04:05.678901', '2026-01-02',
	FROM_UNIXTIME(1772600767), '{"a":[1,"x",true,null],"b":{"c":1.5}}', 0x00FF10, 'active', 'a,c', -128,
	3.141592653589793, 'héllo ✓', 255, 65535, 16777215, 4294967295, -8388608, 1.1, 2026, b'1010000001',
	'-12:34:56', 'ab', '0000-00-00 00:00:00', '1969-07-20 20:17:40', 0xDEADBEEF)`

func typesWant() cdc.Row {
	return cdc.Row{
		"id":     int64(1),
		"n_null": nil,
		"amount": decimal.RequireFromString("-1234.50"),
		"ubig":   uint64(math.MaxUint64),
		"dt6":    time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.UTC),
		"d":      time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		"ts":     time.Unix(1772600767, 0).UTC(),
		"j":      map[string]any{"a": []any{1.0, "x", true, nil}, "b": map[string]any{"c": 1.5}},
		"vb":     []byte{0x00, 0xFF, 0x10},
		"e":      "active",
		"st":     "a,c",
		"ti":     int64(-128),
		"dbl":    3.141592653589793,
		"txt":    "héllo ✓",
		"uti":    uint64(255),
		"usi":    uint64(65535),
		"umi":    uint64(16777215),
		"ui":     uint64(4294967295),
		"mi":     int64(-8388608),
		"f":      1.1,
		"y":      int64(2026),
		"b":      []byte{0x02, 0x81},
		"tm":     "-12:34:56",
		"ch":     "ab",
		"zd":     "0000-00-00 00:00:00",
		"old":    time.Date(1969, 7, 20, 20, 17, 40, 0, time.UTC),
		"bl":     []byte{0xDE, 0xAD, 0xBE, 0xEF},
	}
}

func TestColumnTypesRoundTripToExactGoValues(t *testing.T) {
	for _, metadata := range []string{"NO_LOG", "FULL"} {
		t.Run("binlog_row_metadata="+metadata, func(t *testing.T) {
			setRowMetadata(t, metadata)
			db := database(t)
			// Without the TIME column every column takes the fast decoder; with it, go-mysql's.
			primary(t, "CREATE TABLE "+db+".types "+typesTable,
				"CREATE TABLE "+db+".fast LIKE "+db+".types", "ALTER TABLE "+db+".fast DROP COLUMN tm")
			from := current(t)
			primary(t,
				"INSERT INTO "+db+".types VALUES "+typesRow, "INSERT INTO "+db+".types (id) VALUES (2)",
				"INSERT INTO "+db+".fast SELECT id, n_null, amount, ubig, dt6, d, ts, j, vb, e, st, ti, dbl, txt, uti, usi, umi, ui, mi, f, y, b, ch, zd, old, bl FROM "+db+".types",
				"UPDATE "+db+".fast SET amount = 0.05, txt = NULL WHERE id = 1",
			)
			withNulls := cdc.Row{}
			for k := range typesWant() {
				withNulls[k] = nil
			}
			withNulls["id"] = int64(2)
			noTime := func(r cdc.Row) cdc.Row {
				r = maps.Clone(r)
				delete(r, "tm")
				return r
			}
			updated := noTime(typesWant())
			updated["amount"], updated["txt"] = decimal.RequireFromString("0.05"), nil

			for name, opts := range map[string]cdc.Options{
				"fast decoder":     readerOpts(db + ".*"),
				"go-mysql decoder": cdc.WithGoMySQLDecoder(readerOpts(db + ".*")),
			} {
				t.Run(name, func(t *testing.T) {
					txns := startStream(t, opts, from).next(4)
					compareRow(t, txns[0].Changes[0].After, typesWant())
					compareRow(t, txns[1].Changes[0].After, withNulls)
					if len(txns[2].Changes) != 2 {
						t.Fatalf("INSERT … SELECT: %d changes, want 2", len(txns[2].Changes))
					}
					compareRow(t, txns[2].Changes[0].After, noTime(typesWant()))
					compareRow(t, txns[2].Changes[1].After, noTime(withNulls))
					compareRow(t, txns[3].Changes[0].Before, noTime(typesWant()))
					compareRow(t, txns[3].Changes[0].After, updated)
				})
			}
		})
	}
}

// setRowMetadata sets binlog_row_metadata on the replica for the replication thread that
// writes its binlog, and restores NO_LOG after the test.
func setRowMetadata(t *testing.T, v string) {
	t.Helper()
	apply := func(v string) error {
		return cluster.Replica().Exec(ctxT(t), "STOP SLAVE", "SET GLOBAL binlog_row_metadata = "+v, "START SLAVE")
	}
	if err := apply(v); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := apply("NO_LOG"); err != nil {
			t.Error(err)
		}
	})
}

func compareRow(t *testing.T, got, want cdc.Row) {
	t.Helper()
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Errorf("column %s missing", k)
			continue
		}
		if !reflect.DeepEqual(g, want[k]) {
			t.Errorf("column %s = %#v (%T), want %#v (%T)", k, g, g, want[k], want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("row has %d columns, want %d: %v", len(got), len(want), fmt.Sprint(got))
	}
}
