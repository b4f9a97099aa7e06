// Package config holds postern's configuration: one struct read from POSTERN_*
// environment variables, validated once, with every problem reported together
// and each problem naming its variable.
package config
