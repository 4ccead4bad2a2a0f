echo "hello from tsbuild, built on $(uname -s) as uid $(id -u)"
