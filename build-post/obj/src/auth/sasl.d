build-post/obj/src/auth/sasl.o: src/auth/sasl.c src/auth/auth.h \
 src/util/util.h
src/auth/auth.h:
src/util/util.h:
