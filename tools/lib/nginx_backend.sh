# Sourced by scripts that need local HTTP backends (tools/demo.sh, tests).
#
# start_nginx_backend DIR NAME PORT: an nginx on 127.0.0.1:PORT answering every request
# with "hello from NAME" and the header "X-Backend: NAME". Its files live under DIR/NAME;
# its pid is appended to the caller's `pids` array (the caller kills it).
start_nginx_backend() {
  local dir=$1/$2 name=$2 port=$3
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
error_log $dir/error.log;
pid $dir/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$port;
    location / { add_header X-Backend $name; return 200 "hello from $name\n"; }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -g 'daemon off;' &
  pids+=($!)
}
