build-post/obj/src/tls/tls.o: src/tls/tls.c src/tls/tls.h src/util/util.h
src/tls/tls.h:
src/util/util.h:
