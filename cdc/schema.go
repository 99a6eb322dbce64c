package cdc

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/replication"
)

// kind is how a column's values are normalised (see Row).
type kind uint8

const (
	kindOther     kind = iota // kept as decoded, []byte copied
	kindInt                   // signed integer → int64
	kindUint                  // unsigned integer → uint64
	kindFloat                 // FLOAT/DOUBLE → float64
	kindDecimal               // DECIMAL → decimal.Decimal
	kindDate                  // DATE → time.Time midnight UTC
	kindDateTime              // DATETIME → time.Time UTC
	kindTimestamp             // TIMESTAMP → time.Time UTC
	kindTime                  // TIME → string
	kindYear                  // YEAR → int64
	kindString                // CHAR/VARCHAR/TEXT → string
	kindBytes                 // BINARY/VARBINARY/BLOB/GEOMETRY → []byte
	kindEnum                  // ENUM → name
	kindSet                   // SET → comma-separated names
	kindBit                   // BIT(n) → []byte, big-endian, (n+7)/8 bytes
	kindJSON                  // JSON → decoded
)

// column is one column of a table as the server describes it.
type column struct {
	name     string
	dataType string // information_schema DATA_TYPE, lower case
	kind     kind
	int24    bool     // MEDIUMINT: the decoder sign-extends 24 bits
	bits     int      // BIT(n) width
	padTo    int      // BINARY(n): the binlog strips trailing zero bytes, the value has n
	values   []string // ENUM/SET member names, in order
}

// table is the cached description of one table.
type table struct {
	schema, name string
	cols         []column
	names        []string
	// checked is the last table map event the columns were verified against: the parser makes
	// a new one per table map event, so verification runs once per transaction and table.
	checked *replication.TableMapEvent
	fast    bool // the fast decoder handles every column of checked
}

// fastFor reports whether the fast decoder can read rows of tm (verified by forRows).
func (t *table) fastFor(tm *replication.TableMapEvent) bool {
	return t.checked == tm && t.fast
}

// schemaCache holds table descriptions until a DDL statement clears them. It is used by one
// goroutine at a time.
type schemaCache struct {
	db     *sql.DB
	flavor string
	tables map[string]map[string]*table
}

func newSchemaCache(db *sql.DB, flavor string) *schemaCache {
	return &schemaCache{db: db, flavor: flavor, tables: map[string]map[string]*table{}}
}

// clear forgets every table: after any DDL the columns are read again on next use.
func (c *schemaCache) clear() { clear(c.tables) }

// forRows returns the description of the table a rows event is for, verified against the
// event's table map: same number of columns, compatible types and, when the event carries
// them (binlog_row_metadata=FULL), the same names. A stale cached description is re-read once;
// a mismatch with the live table is ErrSchemaMismatch.
func (c *schemaCache) forRows(ctx context.Context, tm *replication.TableMapEvent) (*table, error) {
	t := c.tables[string(tm.Schema)][string(tm.Table)]
	if t != nil && t.checked == tm {
		return t, nil
	}
	for attempt := 0; ; attempt++ {
		if t == nil {
			var err error
			if t, err = c.load(ctx, string(tm.Schema), string(tm.Table)); err != nil {
				return nil, err
			}
		}
		problem := t.verify(tm)
		if problem == "" {
			t.checked, t.fast = tm, fastOK(tm, t)
			return t, nil
		}
		if attempt > 0 {
			return nil, fmt.Errorf("table %s.%s: %s: %w; the rows were written under an older "+
				"definition of the table: re-snapshot the table from the current position "+
				"(`notifier snapshot`) and move the checkpoint past this transaction", t.schema, t.name, problem, ErrSchemaMismatch)
		}
		t = nil // re-read once: the cached description may predate a DDL we have not seen
	}
}

// verify compares t with a table map event and describes the first difference.
func (t *table) verify(tm *replication.TableMapEvent) string {
	if int(tm.ColumnCount) != len(t.cols) {
		return fmt.Sprintf("the binlog row has %d columns, the table has %d", tm.ColumnCount, len(t.cols))
	}
	names := tm.ColumnNameString()
	for i := range t.cols {
		c := &t.cols[i]
		if len(names) == len(t.cols) && names[i] != c.name {
			return fmt.Sprintf("binlog column %d is %q, the table's is %q", i+1, names[i], c.name)
		}
		if !compatible(tm.ColumnType[i], c) {
			return fmt.Sprintf("binlog column %d (%s) has binlog type %d, the table's column is %s", i+1, c.name, tm.ColumnType[i], c.dataType)
		}
	}
	return ""
}

// compatible reports whether a binlog column type can hold values of column c. It is coarse
// on purpose (strings, blobs, enums share binlog types); it catches a column whose numeric or
// temporal type changed, which a count check alone misses.
func compatible(tp byte, c *column) bool {
	switch c.dataType {
	case "tinyint":
		return tp == mysql.MYSQL_TYPE_TINY
	case "smallint":
		return tp == mysql.MYSQL_TYPE_SHORT
	case "mediumint":
		return tp == mysql.MYSQL_TYPE_INT24
	case "int", "integer":
		return tp == mysql.MYSQL_TYPE_LONG
	case "bigint":
		return tp == mysql.MYSQL_TYPE_LONGLONG
	case "float":
		return tp == mysql.MYSQL_TYPE_FLOAT
	case "double", "real":
		return tp == mysql.MYSQL_TYPE_DOUBLE
	case "decimal", "numeric":
		return tp == mysql.MYSQL_TYPE_NEWDECIMAL || tp == mysql.MYSQL_TYPE_DECIMAL
	case "date":
		return tp == mysql.MYSQL_TYPE_DATE || tp == mysql.MYSQL_TYPE_NEWDATE
	case "datetime":
		return tp == mysql.MYSQL_TYPE_DATETIME || tp == mysql.MYSQL_TYPE_DATETIME2
	case "timestamp":
		return tp == mysql.MYSQL_TYPE_TIMESTAMP || tp == mysql.MYSQL_TYPE_TIMESTAMP2
	case "time":
		return tp == mysql.MYSQL_TYPE_TIME || tp == mysql.MYSQL_TYPE_TIME2
	case "year":
		return tp == mysql.MYSQL_TYPE_YEAR
	case "bit":
		return tp == mysql.MYSQL_TYPE_BIT
	}
	// Strings, blobs, enum, set, json, geometry: any non-numeric, non-temporal binlog type.
	switch tp {
	case mysql.MYSQL_TYPE_TINY, mysql.MYSQL_TYPE_SHORT, mysql.MYSQL_TYPE_INT24, mysql.MYSQL_TYPE_LONG,
		mysql.MYSQL_TYPE_LONGLONG, mysql.MYSQL_TYPE_FLOAT, mysql.MYSQL_TYPE_DOUBLE, mysql.MYSQL_TYPE_NEWDECIMAL,
		mysql.MYSQL_TYPE_DATE, mysql.MYSQL_TYPE_NEWDATE, mysql.MYSQL_TYPE_DATETIME, mysql.MYSQL_TYPE_DATETIME2,
		mysql.MYSQL_TYPE_TIMESTAMP, mysql.MYSQL_TYPE_TIMESTAMP2, mysql.MYSQL_TYPE_TIME, mysql.MYSQL_TYPE_TIME2,
		mysql.MYSQL_TYPE_YEAR:
		return false
	}
	return true
}

// lookup returns the cached or freshly loaded description of schema.table, unverified (the
// snapshot reads rows through the same column descriptions).
func (c *schemaCache) lookup(ctx context.Context, schema, name string) (*table, error) {
	if t := c.tables[schema][name]; t != nil {
		return t, nil
	}
	return c.load(ctx, schema, name)
}

// load reads the table's columns from information_schema and caches them.
func (c *schemaCache) load(ctx context.Context, schema, name string) (*table, error) {
	schemaLoadsTotal.Inc()
	rows, err := c.db.QueryContext(ctx, `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("table %s.%s: read columns: %w", schema, name, err)
	}
	t := &table{schema: schema, name: name}
	for rows.Next() {
		var colName, dataType, colType string
		if err := rows.Scan(&colName, &dataType, &colType); err != nil {
			rows.Close()
			return nil, fmt.Errorf("table %s.%s: read columns: %w", schema, name, err)
		}
		t.cols = append(t.cols, newColumn(colName, strings.ToLower(dataType), colType))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table %s.%s: read columns: %w", schema, name, err)
	}
	rows.Close()
	if len(t.cols) == 0 {
		return nil, fmt.Errorf("table %s.%s: no columns visible: the table was dropped, or the user lacks SELECT on it: %w",
			schema, name, ErrSchemaMismatch)
	}
	if c.flavor == FlavorMariaDB {
		if err := c.markJSON(ctx, t); err != nil {
			return nil, err
		}
	}
	t.names = make([]string, len(t.cols))
	for i := range t.cols {
		t.names[i] = t.cols[i].name
	}
	m := c.tables[schema]
	if m == nil {
		m = map[string]*table{}
		c.tables[schema] = m
	}
	m[name] = t
	return t, nil
}

var jsonCheck = regexp.MustCompile("^json_valid\\(`((?:[^`]|``)+)`\\)$")

// markJSON finds MariaDB JSON columns: JSON is an alias of LONGTEXT there, recognisable only
// by the json_valid(col) CHECK constraint the server adds.
func (c *schemaCache) markJSON(ctx context.Context, t *table) error {
	rows, err := c.db.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
		WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, t.schema, t.name)
	if err != nil {
		return fmt.Errorf("table %s.%s: read check constraints: %w", t.schema, t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var clause string
		if err := rows.Scan(&clause); err != nil {
			return fmt.Errorf("table %s.%s: read check constraints: %w", t.schema, t.name, err)
		}
		m := jsonCheck.FindStringSubmatch(strings.TrimSpace(clause))
		if m == nil {
			continue
		}
		col := strings.ReplaceAll(m[1], "``", "`")
		for i := range t.cols {
			if t.cols[i].name == col && (t.cols[i].kind == kindString || t.cols[i].kind == kindBytes) {
				t.cols[i].kind = kindJSON
			}
		}
	}
	return rows.Err()
}

func newColumn(name, dataType, colType string) column {
	c := column{name: name, dataType: dataType}
	unsigned := strings.Contains(strings.ToLower(colType), "unsigned")
	switch dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		c.kind = kindInt
		if unsigned {
			c.kind = kindUint
		}
		c.int24 = dataType == "mediumint"
	case "float", "double", "real":
		c.kind = kindFloat
	case "decimal", "numeric":
		c.kind = kindDecimal
	case "date":
		c.kind = kindDate
	case "datetime":
		c.kind = kindDateTime
	case "timestamp":
		c.kind = kindTimestamp
	case "time":
		c.kind = kindTime
	case "year":
		c.kind = kindYear
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		c.kind = kindString
	case "binary":
		c.kind = kindBytes
		c.padTo = typeWidth(colType, 1)
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob",
		"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
		"geometrycollection", "vector":
		c.kind = kindBytes
	case "enum":
		c.kind = kindEnum
		c.values = parseMembers(colType)
	case "set":
		c.kind = kindSet
		c.values = parseMembers(colType)
	case "bit":
		c.kind = kindBit
		c.bits = typeWidth(colType, 1)
	case "json":
		c.kind = kindJSON
	}
	return c
}

// typeWidth reads n from "type(n)", or returns def.
func typeWidth(colType string, def int) int {
	if i := strings.IndexByte(colType, '('); i >= 0 {
		if j := strings.IndexByte(colType[i:], ')'); j > 0 {
			if n, err := strconv.Atoi(colType[i+1 : i+j]); err == nil {
				return n
			}
		}
	}
	return def
}

// parseMembers reads the names of enum('a','b”c') or set(...) as information_schema prints
// them (quotes doubled).
func parseMembers(colType string) []string {
	i := strings.IndexByte(colType, '(')
	if i < 0 {
		return nil
	}
	s := colType[i+1:]
	var out []string
	for {
		q := strings.IndexByte(s, '\'')
		if q < 0 {
			return out
		}
		s = s[q+1:]
		var b strings.Builder
		for len(s) > 0 {
			if s[0] == '\'' {
				if len(s) > 1 && s[1] == '\'' {
					b.WriteByte('\'')
					s = s[2:]
					continue
				}
				s = s[1:]
				break
			}
			if s[0] == '\\' && len(s) > 1 {
				b.WriteByte(s[1])
				s = s[2:]
				continue
			}
			b.WriteByte(s[0])
			s = s[1:]
		}
		out = append(out, b.String())
	}
}
