# Stand-in for an OpenACS config.tcl: standin-nsd reads these two settings; the
# oacs_httpport and oacs_address environment variables (env/ via envdir) override them,
# as NaviServer's OpenACS config does.
set address 127.0.0.1
set httpport 8000
