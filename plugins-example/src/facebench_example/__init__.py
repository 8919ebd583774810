"""An example facebench plugin, as a lab would publish one."""
