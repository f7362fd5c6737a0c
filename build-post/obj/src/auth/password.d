build-post/obj/src/auth/password.o: src/auth/password.c src/auth/auth.h \
 src/util/util.h
src/auth/auth.h:
src/util/util.h:
