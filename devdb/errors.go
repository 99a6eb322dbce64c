package devdb

import "errors"

// ErrNoMariaDB means the MariaDB server binaries are not installed.
var ErrNoMariaDB = errors.New("devdb: MariaDB server binaries not found (install them: apt-get install mariadb-server)")
