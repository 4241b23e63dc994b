module sagamesh/tools/prometheus

go 1.26.8
