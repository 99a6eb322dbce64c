// Package secret holds credentials that a config file names but never contains.
//
// Guarantee: a Secret's value never comes from a config file and never leaves the process
// through this package. YAML accepts only {env: VAR} or {file: path}; an inline value is refused
// with an error naming the key (secrets never live in config files). A Secret prints, logs and
// marshals (YAML, JSON, fmt, slog) as "<secret>", and errors name the variable or file, never
// the value. Resolve reads the value at the moment it is needed.
package secret
