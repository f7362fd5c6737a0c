build-post/obj/src/auth/throttle.o: src/auth/throttle.c src/auth/auth.h \
 src/util/util.h src/util/clientkey.h
src/auth/auth.h:
src/util/util.h:
src/util/clientkey.h:
