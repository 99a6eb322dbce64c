package cdc_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"notifier/cdc"
)

const mixedTable = `(
	id INT PRIMARY KEY,
	i8 TINYINT, u8 TINYINT UNSIGNED, i16 SMALLINT, u16 SMALLINT UNSIGNED,
	i24 MEDIUMINT, u24 MEDIUMINT UNSIGNED, i32 INT, u32 INT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED,
	d1 DECIMAL(1,0), d5 DECIMAL(5,5), d10 DECIMAL(10,4), d18 DECIMAL(18,9), d18z DECIMAL(18,0),
	f FLOAT, g DOUBLE,
	dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts4 TIMESTAMP(4) NULL, dd DATE, y YEAR,
	vc VARCHAR(300), ch CHAR(255), bn BINARY(4), vb VARBINARY(300),
	tt TINYTEXT, mt MEDIUMTEXT, lb LONGBLOB,
	e ENUM('x','y','z'), s SET('a','b','c','d','e','f','g','h','i','j'), b1 BIT(1), b64 BIT(64),
	j JSON
)`

// mixedRow returns an INSERT value list with boundary and random values of every column.
func mixedRow(id int, rng *rand.Rand) string {
	pick := func(vals ...string) string { return vals[rng.IntN(len(vals))] }
	num := func(digits int) string {
		var b strings.Builder
		for i := 0; i < digits; i++ {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	sign := func() string { return pick("", "-") }
	str := func(n int) string {
		const alphabet = "aZ09 ü✓'\\\"%_"
		r := []rune(alphabet)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return strings.ReplaceAll(strings.ReplaceAll(b.String(), `\`, `\\`), `'`, `''`)
	}
	null := func(v string) string {
		if rng.IntN(8) == 0 {
			return "NULL"
		}
		return v
	}
	vals := []string{
		fmt.Sprint(id),
		null(pick("-128", "127", "0", "-1", fmt.Sprint(rng.IntN(256)-128))),
		null(pick("0", "255", fmt.Sprint(rng.IntN(256)))),
		null(pick("-32768", "32767", fmt.Sprint(rng.IntN(65536)-32768))),
		null(pick("0", "65535", fmt.Sprint(rng.IntN(65536)))),
		null(pick("-8388608", "8388607", "-1", fmt.Sprint(rng.IntN(1<<24)-(1<<23)))),
		null(pick("0", "16777215", fmt.Sprint(rng.IntN(1<<24)))),
		null(pick("-2147483648", "2147483647", fmt.Sprint(rng.Int32()))),
		null(pick("0", "4294967295", fmt.Sprint(rng.Uint32()))),
		null(pick("-9223372036854775808", "9223372036854775807", fmt.Sprint(rng.Int64()-rng.Int64()))),
		null(pick("0", "18446744073709551615", fmt.Sprint(rng.Uint64()))),
		null(sign() + num(1)),
		null(sign() + "0." + num(5)),
		null(sign() + num(6) + "." + num(4)),
		null(sign() + num(9) + "." + num(9)),
		null(sign() + num(18)),
		null(pick("1.1", "-3.25e10", "0", fmt.Sprint(rng.Float32()))),
		null(pick("3.141592653589793", "-1e-300", "0", fmt.Sprint(rng.NormFloat64()))),
		null(pick("'2026-01-02 03:04:05'", "'0000-00-00 00:00:00'", "'1969-07-20 20:17:40'", "'9999-12-31 23:59:59'", "'2026-00-00 00:00:00'")),
		null(pick("'2026-01-02 03:04:05.123'", "'1950-01-01 00:00:00.001'", "'0000-00-00 00:00:00.000'")),
		null(pick("'2026-01-02 03:04:05.000001'", "'2026-06-30 23:59:59.999999'", "'1000-01-01 00:00:00.5'")),
		null(pick("'2026-01-02 03:04:05'", "'1970-01-01 00:00:01'", "'2038-01-19 03:14:07'")),
		null(pick("'2026-01-02 03:04:05.1234'", "'2001-09-09 01:46:40.0001'")),
		null(pick("'2026-01-02'", "'0000-00-00'", "'1000-01-01'", "'9999-12-31'", "'2026-02-00'")),
		null(pick("2026", "1901", "2155", "0")),
		null("'" + str(rng.IntN(300)) + "'"),
		null("'" + str(rng.IntN(255)) + "'"),
		null(pick("X'00000000'", "X'DEADBEEF'", "X'41'")),
		null(pick("X''", "X'00FF'", "X'"+strings.Repeat("AB", 280)+"'")),
		null("'" + str(rng.IntN(60)) + "'"),
		null("'" + str(rng.IntN(2000)) + "'"),
		null(pick("X''", "X'"+strings.Repeat("0123456789ABCDEF", 1+rng.IntN(100))+"'")),
		null(pick("'x'", "'y'", "'z'")),
		null(pick("''", "'a'", "'a,j'", "'b,c,d,e,f,g,h,i,j'")),
		null(pick("b'0'", "b'1'")),
		null(pick("b'0'", "0xFFFFFFFFFFFFFFFF", "0x8000000000000001")),
		null(pick(`'{"a":1}'`, `'[1,2.5,"x",null,true]'`, `'"str"'`, `'{}'`)),
	}
	return "(" + strings.Join(vals, ", ") + ")"
}

// TestFastDecoderMatchesGoMySQLDecoderAndSnapshot reads the same random rows through the fast
// decoder, go-mysql's decoder and the snapshot, and expects identical Rows.
func TestFastDecoderMatchesGoMySQLDecoderAndSnapshot(t *testing.T) {
	db := database(t)
	primary(t, "CREATE TABLE "+db+".mixed "+mixedTable)
	from := current(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const batches, per = 10, 20
	for b := 0; b < batches; b++ {
		var rows []string
		for i := 0; i < per; i++ {
			rows = append(rows, mixedRow(b*per+i, rng))
		}
		primary(t, "SET STATEMENT sql_mode = '' FOR INSERT INTO "+db+".mixed VALUES "+strings.Join(rows, ", "))
	}
	primary(t, "SET STATEMENT sql_mode = '' FOR UPDATE "+db+".mixed SET vc = CONCAT(vc, 'x'), d10 = -d10, dt6 = dt6 + INTERVAL 1 SECOND WHERE id % 3 = 0")

	fast := startStream(t, readerOpts(db+".*"), from).next(batches + 1)
	slow := startStream(t, cdc.WithGoMySQLDecoder(readerOpts(db+".*")), from).next(batches + 1)
	for i := range fast {
		if len(fast[i].Changes) != len(slow[i].Changes) {
			t.Fatalf("txn %d: %d changes fast, %d go-mysql", i, len(fast[i].Changes), len(slow[i].Changes))
		}
		for k := range fast[i].Changes {
			f, s := fast[i].Changes[k], slow[i].Changes[k]
			if !reflect.DeepEqual(f, s) {
				t.Errorf("txn %d change %d differs", i, k)
				compareRow(t, f.After, s.After)
				compareRow(t, f.Before, s.Before)
			}
		}
	}
	if t.Failed() {
		return
	}

	// The snapshot reads the table as it is now: the updated rows' after images, the others'
	// inserts.
	latest := map[any]cdc.Row{}
	for _, txn := range fast {
		for _, c := range txn.Changes {
			latest[c.After["id"]] = c.After
		}
	}
	waitReplicated(t)
	_, pages, _ := snapshotAll(t, newReader(t, readerOpts()), db+".mixed", nil, 64)
	n := 0
	for _, p := range pages {
		for _, c := range p.Changes {
			n++
			if want := latest[c.After["id"]]; !reflect.DeepEqual(c.After, want) {
				t.Errorf("snapshot row %v differs from its binlog image", c.After["id"])
				compareRow(t, c.After, want)
			}
		}
	}
	if n != batches*per {
		t.Errorf("snapshot read %d rows, want %d", n, batches*per)
	}
}
