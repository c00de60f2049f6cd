#!/bin/sh
echo "hello from $(uname -m), built on $(cat /app/built-on)"
